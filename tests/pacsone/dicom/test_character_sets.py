"""The character-set corpus over the network: each file sent with dcmtk's storescu and dcmsend
and with pynetdicom (and imported with `importdicom`), queried with dcmtk's findscu and with
pynetdicom; every value compared with pydicom's own decoding of the same file (`ds.decode()`)."""

import pytest
from django.core.management import call_command
from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

from pacsone.dicom import remote as remotes
from pacsone.dicom import scu
from pacsone.models import Instance
from tests.helpers import journaled, make_file
from tests.pacsone.core.test_character_sets import assert_indexed_as_pydicom_decodes
from tests.pacsone.dicom.charset_corpus import CORPUS, corpus_file, decoded
from tests.pacsone.dicom.remote_archive import start_remote_archive
from tests.pacsone.dicom.test_dcmtk_interop import dcmsend, dcmtk

pytestmark = pytest.mark.peers

@pytest.fixture(autouse=True)
def _any_ae_may_query(settings):
    """These tests are about text, not about who may query (tests/pacsone/dicom/test_dicom_access.py)."""
    settings.PACS_DICOM_QUERY_POLICY = "open"


QUERY_KEYWORDS = ("PatientName", "InstitutionName", "ReferringPhysicianName", "StudyDescription")


def storescu(port: int, path) -> None:
    result = dcmtk("storescu", "-aec", "PACSONE", "-aet", "STORESCU", "127.0.0.1", port, path)
    assert result.returncode == 0, result.stdout


def pynetdicom_store(port: int, path) -> None:
    ds = dcmread(path)
    ae = AE(ae_title="PYNETDICOM")
    ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", port, ae_title="PACSONE")
    assert assoc.is_established
    try:
        rsp = assoc.send_c_store(ds)
        assert rsp.Status == 0x0000
    finally:
        assoc.release()


def send(sender: str, port: int, path) -> None:
    if sender == "storescu":
        storescu(port, path)
    elif sender == "dcmsend":
        result = dcmsend(port, path)
        assert result.returncode == 0, result.stdout
    elif sender == "pynetdicom":
        pynetdicom_store(port, path)
    else:
        call_command("importdicom", str(path), "--no-progress")


@pytest.mark.parametrize("sender", ["storescu", "dcmsend", "pynetdicom", "importdicom"])
@pytest.mark.parametrize("name", CORPUS)
def test_it_indexes_what_pydicom_decodes_however_the_file_arrives(scp, tmp_path, name, sender):
    _ae_title, port = scp
    path = corpus_file(name, tmp_path)

    send(sender, port, path)

    assert Instance.objects.count() == 1
    assert_indexed_as_pydicom_decodes(path)


def findscu(port: int, keys: list[str], out) -> list[Dataset]:
    out.mkdir(exist_ok=True)
    args = ["-aet", "FINDSCU", "-aec", "PACSONE", "-S", "-X", "-od", out, "-k", "QueryRetrieveLevel=STUDY"]
    for key in keys:
        args += ["-k", key]
    result = dcmtk("findscu", *args, "127.0.0.1", port)
    assert result.returncode == 0, result.stdout
    answers = [dcmread(path) for path in sorted(out.glob("rsp*.dcm"))]
    for answer in answers:
        answer.decode()
    return answers


def text(ds: Dataset, keyword: str) -> str:
    return str(ds.get(keyword, "") or "").strip()


@pytest.mark.parametrize("name", CORPUS)
def test_findscu_gets_the_text_pydicom_decodes_with_a_character_set_that_agrees(scp, tmp_path, name):
    _ae_title, port = scp
    path = corpus_file(name, tmp_path)
    expected = decoded(path)
    storescu(port, path)

    answers = findscu(port, [f"StudyInstanceUID={expected.study_uid}", *QUERY_KEYWORDS], tmp_path / "rsp")

    assert len(answers) == 1
    for keyword in QUERY_KEYWORDS:
        assert text(answers[0], keyword) == expected.texts[keyword], keyword
    all_text = "".join(expected.texts[k] for k in QUERY_KEYWORDS)
    assert answers[0].get("SpecificCharacterSet") == (None if all_text.isascii() else "ISO_IR 192")


@pytest.fixture
def corpus_scp(scp, tmp_path):
    _ae_title, port = scp
    for name in ("utf8-mueller", "utf8-yamada", "gb18030", "latin1", "chrH31.dcm"):
        storescu(port, corpus_file(name, tmp_path / "corpus"))
    return port


@pytest.mark.parametrize("keys,expected", [
    (["SpecificCharacterSet=ISO_IR 192", "PatientName=MÜLLER*"], {"MÜLLER^JÜRGEN"}),
    (["PatientName=MÜLLER*"], {"MÜLLER^JÜRGEN"}),  # UTF-8 typed without (0008,0005)
    (["PatientName=müller*"], {"MÜLLER^JÜRGEN"}),
    (["SpecificCharacterSet=ISO_IR 192", "PatientName=山田*"], {"山田^太郎", "Yamada^Tarou=山田^太郎=やまだ^たろう"}),
    (["PatientName=Yamada^Tarou"], {"Yamada^Tarou=山田^太郎=やまだ^たろう"}),
    (["PatientName=B?RANGER*"], {"Béranger^François"}),
])
def test_findscu_finds_non_ascii_names_with_wildcards(corpus_scp, tmp_path, keys, expected):
    answers = findscu(corpus_scp, [*keys, "InstitutionName"], tmp_path / "rsp")

    assert {text(answer, "PatientName") for answer in answers} == expected
    assert all(answer.SpecificCharacterSet == "ISO_IR 192" for answer in answers)


def test_findscu_asking_in_latin1_gets_its_answer_in_latin1(corpus_scp, tmp_path):
    answers = findscu(corpus_scp, ["SpecificCharacterSet=ISO_IR 100", "PatientName=B*RANGER*", "InstitutionName"],
                      tmp_path / "rsp")

    assert len(answers) == 1
    assert answers[0].SpecificCharacterSet == "ISO_IR 100"
    assert (text(answers[0], "PatientName"), text(answers[0], "InstitutionName")) == (
        "Béranger^François", "Hôpital Européen")


def pynetdicom_find(port: int, identifier: Dataset) -> list[Dataset]:
    ae = AE(ae_title="PYNETDICOM")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = ae.associate("127.0.0.1", port, ae_title="PACSONE")
    assert assoc.is_established
    answers = []
    try:
        for status, answer in assoc.send_c_find(identifier, StudyRootQueryRetrieveInformationModelFind):
            assert status is not None and status.Status in (0x0000, 0xFF00, 0xFF01)
            if status.Status in (0xFF00, 0xFF01):
                answer.decode()
                answers.append(answer)
    finally:
        assoc.release()
    return answers


@pytest.mark.parametrize("name", CORPUS)
def test_pynetdicom_gets_the_text_pydicom_decodes(scp, tmp_path, name):
    _ae_title, port = scp
    path = corpus_file(name, tmp_path)
    expected = decoded(path)
    pynetdicom_store(port, path)
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = expected.study_uid
    for keyword in QUERY_KEYWORDS:
        setattr(identifier, keyword, "")

    answers = pynetdicom_find(port, identifier)

    assert len(answers) == 1
    for keyword in QUERY_KEYWORDS:
        assert text(answers[0], keyword) == expected.texts[keyword], keyword


def test_pynetdicom_asking_in_iso_2022_japanese_finds_and_gets_its_answer_in_that_set(corpus_scp):
    identifier = Dataset()
    identifier.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.PatientName = "山田^太郎"
    identifier.InstitutionName = ""

    answers = pynetdicom_find(corpus_scp, identifier)

    by_name = {text(answer, "PatientName"): answer for answer in answers}
    assert set(by_name) == {"山田^太郎", "Yamada^Tarou=山田^太郎=やまだ^たろう"}
    assert by_name["Yamada^Tarou=山田^太郎=やまだ^たろう"].SpecificCharacterSet == ["", "ISO 2022 IR 87"]
    # 北京协和医院 (simplified Chinese) has characters JIS X 0208 lacks: that answer is in UTF-8.
    assert by_name["山田^太郎"].SpecificCharacterSet == "ISO_IR 192"
    assert text(by_name["山田^太郎"], "InstitutionName") == "北京协和医院"


def test_a_utf8_study_with_an_ascii_referring_physician_is_stored_with_every_name(scp, tmp_path):
    # The report's case: empty patient name, mojibake institution, lost referring physician.
    _ae_title, port = scp
    path = make_file(tmp_path, "mueller.dcm", patient_name="MÜLLER^JÜRGEN", SpecificCharacterSet="ISO_IR 192",
                     InstitutionName="Universitätsklinikum", ReferringPhysicianName="SMITH^JANE")

    storescu(port, path)

    study = Instance.objects.select_related("series__study__patient").get().series.study
    assert (study.patient.patient_name, study.institution_name, study.referring_physician_name) == (
        "MÜLLER^JÜRGEN", "Universitätsklinikum", "SMITH^JANE")


# --- Remote search, retrieve (C-MOVE to us) and sync against dcmtk's dcmqrscp -----------------------------

REMOTE_CORPUS = ("utf8-mueller", "chrH31.dcm", "chrX2.dcm", "chrFren.dcm")


@pytest.fixture
def remote(scp, tmp_path):
    _ae_title, port = scp
    archive = start_remote_archive(tmp_path / "remote", port)
    files = [corpus_file(name, tmp_path / "corpus") for name in REMOTE_CORPUS]
    copies = []
    for path in files:  # dcmqridx indexes files where they lie: copies in the archive's folder
        copy = tmp_path / "remote" / "files" / path.name
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(path.read_bytes())
        copies.append(copy)
    archive.add(*copies)
    yield archive, copies
    archive.stop()


def test_a_remote_search_sends_non_ascii_text_in_utf8_and_reads_the_answers(remote):
    archive, _files = remote
    identifier = scu.study_identifier("")
    identifier.PatientName = "MÜLLER*"

    answers = scu.find(archive.ae, identifier)

    assert [str(answer.PatientName) for answer in answers] == ["MÜLLER^JÜRGEN"]


def test_a_retrieved_study_is_indexed_as_pydicom_decodes_it(remote):
    archive, files = remote

    for path in files:
        result = scu.retrieve_study(archive.ae, decoded(path).study_uid)
        assert result.ok and result.completed == 1, result.summary()

    assert Instance.objects.count() == len(files)
    for path in files:
        assert_indexed_as_pydicom_decodes(path)


def test_a_sync_indexes_what_pydicom_decodes(remote):
    archive, files = remote

    remotes.start_sync(archive.ae)

    assert Instance.objects.count() == len(files)
    for path in files:
        assert_indexed_as_pydicom_decodes(path)


def test_a_non_ascii_query_is_journaled_as_asked(corpus_scp, tmp_path):
    findscu(corpus_scp, ["PatientName=MÜLLER*"], tmp_path / "rsp")

    assert journaled(action="query", detail__contains="PatientName=MÜLLER*").exists()
