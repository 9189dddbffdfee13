"""Character sets at the ingest, in the index, in searches, the visibility rule, pages, the API and
C-FIND answers built from the index (the network side: tests/pacsone/dicom/test_character_sets.py).
Every value is compared with what pydicom itself decodes from the same file."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils.html import escape
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.uid import UID

from accounts.models import UserGroup
from audit.models import Entry
from pacsone import storage
from pacsone.dicom import charsets, query
from pacsone.dicom.net import identifier_codec, identifier_text
from pacsone.humanize import person_name
from pacsone.dicom.receiving import header_from_head
from pacsone.ingest import Origin, ingest_file
from pacsone.models import Instance, Study
from pacsone.study_search import search_studies
from tests.helpers import dataset_bytes, make_file
from tests.pacsone.dicom.charset_corpus import CORPUS, corpus_file, decoded
from tests.people import make_user

pytestmark = pytest.mark.django_db


def assert_indexed_as_pydicom_decodes(path):
    expected = decoded(path)
    instance = Instance.objects.select_related("series__study__patient").get(sop_instance_uid=expected.sop_uid)
    series = instance.series
    study = series.study
    assert study.patient.patient_name == expected.patient_name
    assert study.patient.patient_name_search == expected.patient_name.upper()
    assert study.institution_name == expected.texts["InstitutionName"]
    assert study.referring_physician_name == expected.texts["ReferringPhysicianName"]
    assert study.reading_physician_name == expected.texts["NameOfPhysiciansReadingStudy"]
    assert study.study_description == expected.texts["StudyDescription"]
    assert series.series_description == expected.texts["SeriesDescription"]
    for tag, element in expected.json.items():
        assert instance.header[tag] == element, tag


@pytest.mark.parametrize("name", CORPUS)
def test_it_indexes_an_imported_file_as_pydicom_decodes_it(tmp_path, name):
    path = corpus_file(name, tmp_path)

    result = ingest_file(path, Origin("import"))

    assert result.outcome.accepted, result.reason
    assert_indexed_as_pydicom_decodes(path)


@pytest.mark.parametrize("name", CORPUS)
def test_it_indexes_the_header_the_scp_parses_early_as_pydicom_decodes_it(tmp_path, name):
    # The SCP parses the header from the first bytes of the data set while the rest arrives;
    # that header gave "Unknown encoding 'ISO_IR 192'" and empty names.
    path = corpus_file(name, tmp_path)
    expected = decoded(path)
    syntax = UID("1.2.840.10008.1.2.1")
    header = header_from_head(dataset_bytes(path), syntax, complete=True)
    assert header is not None
    header.file_meta = Dataset()
    header.file_meta.TransferSyntaxUID = syntax

    result = ingest_file(path, Origin("dicom", ae_title="STORESCU"), header=header)

    assert result.outcome.accepted, result.reason
    assert_indexed_as_pydicom_decodes(path)
    assert str(header.PatientName) == expected.patient_name


# --- Searches: the study list, the REST API, C-FIND matching ------------------------------------------


@pytest.fixture
def corpus_archive(tmp_path):
    for name in ("utf8-mueller", "utf8-yamada", "latin1", "gb18030", "chrH31.dcm", "chrI2.dcm", "chrGerm.dcm"):
        result = ingest_file(corpus_file(name, tmp_path), Origin("import"))
        assert result.outcome.accepted, result.reason


SEARCHES = [
    ("patient_name", "MÜLLER*", {"MÜLLER^JÜRGEN"}),
    ("patient_name", "müller*", {"MÜLLER^JÜRGEN"}),
    ("patient_name", "Müller^Jürgen", {"MÜLLER^JÜRGEN"}),
    ("patient_name", "?üLLER^J*", {"MÜLLER^JÜRGEN"}),
    ("patient_name", "山田*", {"山田^太郎", "Yamada^Tarou=山田^太郎=やまだ^たろう"}),
    ("patient_name", "山田^太郎", {"山田^太郎", "Yamada^Tarou=山田^太郎=やまだ^たろう"}),
    ("patient_name", "yamada*", {"Yamada^Tarou=山田^太郎=やまだ^たろう"}),
    ("patient_name", "Yamada^Tarou", {"Yamada^Tarou=山田^太郎=やまだ^たろう"}),
    ("patient_name", "Yamada^Tarou=山田^太郎=やまだ^たろう", {"Yamada^Tarou=山田^太郎=やまだ^たろう"}),
    ("patient_name", "やまだ*", {"Yamada^Tarou=山田^太郎=やまだ^たろう"}),
    ("patient_name", "홍^길동", {"Hong^Gildong=洪^吉洞=홍^길동"}),
    ("patient_name", "äneas*", {"Äneas^Rüdiger"}),
    ("patient_name", "béranger^françois", {"Béranger^François"}),
    ("referring_physician", "dubois^hél*", {"Béranger^François"}),
    ("referring_physician", "鈴木*", {"Yamada^Tarou=山田^太郎=やまだ^たろう"}),
    ("institution", "universitätsklinikum*", {"MÜLLER^JÜRGEN"}),
    ("institution", "HÔPITAL EUROPÉEN", {"Béranger^François"}),
]


@pytest.mark.parametrize("parameter,value,expected", SEARCHES)
def test_it_finds_non_ascii_names_in_the_study_search(corpus_archive, parameter, value, expected):
    studies, problems = search_studies(Study.objects.all(), {parameter: value})

    assert problems == {}
    assert {s.patient.patient_name for s in studies} == expected


C_FIND_SEARCHES = [
    ("PatientName", "MÜLLER*", {"MÜLLER^JÜRGEN"}),
    ("PatientName", "müller*", {"MÜLLER^JÜRGEN"}),
    ("PatientName", "山田*", {"山田^太郎", "Yamada^Tarou=山田^太郎=やまだ^たろう"}),
    ("PatientName", "Yamada^Tarou", {"Yamada^Tarou=山田^太郎=やまだ^たろう"}),
    ("PatientName", "*TAROU", {"Yamada^Tarou=山田^太郎=やまだ^たろう"}),
    ("ReferringPhysicianName", "DUBOIS^HÉLÈNE", {"Béranger^François"}),
    ("ReferringPhysicianName", "Suzuki*", {"Yamada^Tarou=山田^太郎=やまだ^たろう"}),
]


@pytest.mark.parametrize("keyword,value,expected", C_FIND_SEARCHES)
def test_it_finds_non_ascii_names_with_c_find_matching(corpus_archive, keyword, value, expected):
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.QueryRetrieveLevel = "STUDY"
    setattr(ds, keyword, value)
    identifier = read_back(ds)

    found = query.build_query(identifier, query.STUDY_ROOT)

    assert {s.patient.patient_name for s in found.queryset()} == expected


def read_back(ds: Dataset, explicit_vr: bool = False) -> Dataset:
    """`ds` as the SCP's engine hands it over: encoded, then read with raw elements."""
    encoded = identifier_codec.pydicom_encode(ds, explicit_vr)
    identifier = read_dataset(DicomBytesIO(encoded), not explicit_vr, True)
    identifier.set_original_encoding(not explicit_vr, True)
    return identifier


@pytest.mark.parametrize("charset", [b"", b"\x08\x00\x05\x00\x00\x00\x00\x00"], ids=["absent", "empty"])
def test_it_reads_a_query_without_a_character_set_as_utf8_when_it_is(corpus_archive, charset):
    # findscu -k PatientName=MÜLLER* typed in a UTF-8 terminal sends UTF-8 without (0008,0005),
    # or with an empty one when it asks for it as a return key (-k SpecificCharacterSet).
    identifier = read_dataset(DicomBytesIO(
        charset + b"\x08\x00\x52\x00\x06\x00\x00\x00STUDY " + b"\x10\x00\x10\x00\x08\x00\x00\x00"
        + "MÜLLER*".encode()), True, True)
    identifier_text.read_leniently(identifier)

    found = query.build_query(identifier, query.STUDY_ROOT)

    assert {s.patient.patient_name for s in found.queryset()} == {"MÜLLER^JÜRGEN"}


def test_the_study_list_and_the_api_show_and_find_non_ascii_names(client, corpus_archive):
    client.force_login(make_user("root"))

    page = client.get("/", {"patient_name": "müller*"})
    api = client.get("/api/studies/", {"patient_name": "山田*"})

    assert page.status_code == 200
    assert {s.patient.patient_name for s in page.context["page"]} == {"MÜLLER^JÜRGEN"}
    assert "MÜLLER^JÜRGEN" in page.content.decode()
    assert api.status_code == 200
    assert {row["patient"]["patient_name"] for row in api.json()["results"]} == {
        "山田^太郎", "Yamada^Tarou=山田^太郎=やまだ^たろう"}
    assert Entry.objects.filter(action="search", detail__contains="müller*").exists()


# --- The visibility rule's name match ---------------------------------------------------------------------


@pytest.mark.parametrize("referring", ["MÜLLER^JÜRGEN", "Müller^Jürgen", "müller^jürgen^^Dr.",
                                       "MÜLLER^JÜRGEN=ミュラー^ユルゲン"])
def test_a_physician_sees_the_private_study_that_names_him_in_any_case(tmp_path, referring):
    physician = make_user("juergen", first_name="Jürgen", last_name="Müller")
    outsider = make_user("hans", first_name="Hans", last_name="Muller")
    path = make_file(tmp_path, "study.dcm", ReferringPhysicianName=referring, SpecificCharacterSet="ISO_IR 192")
    result = ingest_file(path, Origin("import"))
    assert result.outcome.accepted, result.reason

    assert Study.objects.visible_to(physician).count() == 1
    assert Study.objects.visible_to(outsider).count() == 0


# --- C-FIND answers built from the index ---------------------------------------------------------------


def study_identifier(study_uid: str, charset=None) -> Dataset:
    ds = Dataset()
    if charset is not None:
        ds.SpecificCharacterSet = charset
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientName = ""
    ds.PatientID = ""
    ds.StudyDescription = ""
    ds.ReferringPhysicianName = ""
    ds.InstitutionName = ""  # not an index column: from the stored header
    ds.StudyInstanceUID = study_uid
    return ds


def answers_both_ways(identifier: Dataset, explicit_vr: bool) -> tuple[list[bytes], list[bytes]]:
    """The answers encoded by the fast codec, and the same answers' Datasets through pydicom."""
    _found, encoded = query.find_encoded(read_back(identifier), query.STUDY_ROOT, "PACSONE", explicit_vr)
    _found, datasets = query.find(read_back(identifier), query.STUDY_ROOT, "PACSONE")
    return list(encoded), [identifier_codec.pydicom_encode(ds, explicit_vr) for ds in datasets]


@pytest.mark.parametrize("explicit_vr", [False, True])
@pytest.mark.parametrize("name", CORPUS)
def test_a_c_find_answer_holds_the_text_pydicom_decodes_in_a_character_set_that_agrees(tmp_path, name, explicit_vr):
    path = corpus_file(name, tmp_path)
    expected = decoded(path)
    ingest_file(path, Origin("import"))

    fast, through_pydicom = answers_both_ways(study_identifier(expected.study_uid), explicit_vr)

    assert fast == through_pydicom
    answer = read_dataset(DicomBytesIO(fast[0]), not explicit_vr, True)
    answer.decode()
    for keyword in ("PatientName", "InstitutionName", "ReferringPhysicianName", "StudyDescription"):
        assert str(answer.get(keyword, "") or "").strip() == expected.texts[keyword], keyword
    texts = "".join(expected.texts[k] for k in ("PatientName", "InstitutionName", "ReferringPhysicianName",
                                                   "StudyDescription"))
    assert answer.get("SpecificCharacterSet") == (None if texts.isascii() else "ISO_IR 192")


def test_an_answer_with_non_ascii_text_only_in_the_stored_header_names_its_character_set(tmp_path):
    path = make_file(tmp_path, "a.dcm", patient_name="PLAIN^ASCII", InstitutionName="Universitätsklinikum",
                     SpecificCharacterSet="ISO_IR 192")
    ingest_file(path, Origin("import"))
    study_uid = Study.objects.get().study_instance_uid

    fast, through_pydicom = answers_both_ways(study_identifier(study_uid), explicit_vr=False)

    assert fast == through_pydicom
    assert "Universitätsklinikum".encode() in fast[0]
    answer = read_dataset(DicomBytesIO(fast[0]), True, True)
    assert answer.SpecificCharacterSet == "ISO_IR 192"
    assert answer.InstitutionName == "Universitätsklinikum"


@pytest.mark.parametrize("name,asked,answered", [
    ("latin1", "ISO_IR 100", "ISO_IR 100"),  # the peer reads Latin-1: answered in it
    ("utf8-mueller", "ISO_IR 100", "ISO_IR 100"),  # MÜLLER fits Latin-1 too
    ("utf8-yamada", "ISO_IR 100", "ISO_IR 192"),  # kanji do not fit Latin-1
    ("chrH31.dcm", ["", "ISO 2022 IR 87"], ["", "ISO 2022 IR 87"]),
    ("chrRuss.dcm", "ISO_IR 144", "ISO_IR 144"),
    ("gb18030", "GB18030", "GB18030"),
    ("chrGerm.dcm", "ISO_IR 192", "ISO_IR 192"),
])
def test_an_answer_is_written_in_the_query_character_set_when_it_holds_the_text(tmp_path, name, asked, answered):
    path = corpus_file(name, tmp_path)
    expected = decoded(path)
    ingest_file(path, Origin("import"))

    fast, through_pydicom = answers_both_ways(study_identifier(expected.study_uid, charset=asked), explicit_vr=False)

    assert fast == through_pydicom
    answer = read_dataset(DicomBytesIO(fast[0]), True, True)
    assert answer.SpecificCharacterSet == answered
    answer.decode()
    assert str(answer.PatientName) == expected.patient_name
    assert str(answer.get("InstitutionName", "")).strip() == expected.texts["InstitutionName"]


@pytest.mark.parametrize("asked,texts,answered", [
    ([], [], None),
    (["ISO_IR 100"], [], None),
    ([], ["MÜLLER"], "ISO_IR 192"),
    (["ISO_IR 6"], ["MÜLLER"], "ISO_IR 192"),
    (["ISO_IR 100"], ["MÜLLER", "Köln"], "ISO_IR 100"),
    (["ISO_IR 100"], ["MÜLLER", "Łódź"], "ISO_IR 192"),
    (["ISO_IR 13"], ["ﾔﾏﾀﾞ"], "ISO_IR 13"),
    (["ISO_IR 13"], ["山田"], "ISO_IR 192"),  # shift_jis could, JIS X 0201 cannot
    (["ISO 2022 IR 13", "ISO 2022 IR 87"], ["ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎"], ["ISO 2022 IR 13", "ISO 2022 IR 87"]),
    (["", "ISO 2022 IR 149"], ["山田"], ["", "ISO 2022 IR 149"]),  # KS X 1001 has these hanja
    (["", "ISO 2022 IR 149"], ["やまだ", "Müller"], "ISO_IR 192"),
    (["NOT A CHARSET"], ["MÜLLER"], "ISO_IR 192"),
])
def test_the_answer_character_set_rule(asked, texts, answered):
    assert charsets.answer_charset(asked, texts) == answered


# --- Edits: the stored file's character set holds the new text -------------------------------------------


@pytest.mark.parametrize("name,new_name,charset", [
    ("chrGerm.dcm", "Müller^Jürgen", "ISO_IR 100"),  # Latin-1 holds it: the file keeps its set
    ("chrGerm.dcm", "山田^太郎", "ISO_IR 192"),  # it does not: the whole file goes UTF-8
    ("chrH31.dcm", "MÜLLER^JÜRGEN", "ISO_IR 192"),
])
def test_an_edit_writes_new_text_in_a_character_set_that_holds_it(client, tmp_path, name, new_name, charset):
    path = corpus_file(name, tmp_path)
    before = decoded(path)
    ingest_file(path, Origin("import"))
    study = Study.objects.select_related("patient").get()
    client.force_login(make_user("power", ["view", "modify"]))

    response = client.post(f"/actions/study/{study.study_instance_uid}/edit/", {
        "patient_name": new_name, "birth_date": "", "sex": study.patient.sex,
        "study_description": study.study_description, "accession_number": study.accession_number,
        "referring_physician_name": study.referring_physician_name,
        "reading_physician_name": study.reading_physician_name, "study_date": "", "confirmed": "yes"})

    assert response.status_code == 302
    instance = Instance.objects.select_related("series__study__patient", "storage_location").get()
    stored = storage.absolute_path(instance.storage_location, instance.file_path)
    after = decoded(stored)
    assert after.charset == charset
    assert after.patient_name == new_name == instance.series.study.patient.patient_name
    assert {k: v for k, v in after.texts.items() if k != "PatientName"} == {
        k: v for k, v in before.texts.items() if k != "PatientName"}


# --- Pages: the study page, the viewer overlay and the header dump -----------------------------------------


@pytest.mark.parametrize("name", ["utf8-mueller", "utf8-yamada", "chrH31.dcm", "chrI2.dcm", "chrArab.dcm"])
def test_the_pages_and_the_viewer_overlay_show_the_decoded_text(client, tmp_path, name):
    path = corpus_file(name, tmp_path)
    expected = decoded(path)
    ingest_file(path, Origin("import"))
    client.force_login(make_user("root"))
    base = f"/studies/{expected.study_uid}/"

    study_page = client.get(base).content.decode()
    viewer = client.get(f"{base}series/{expected.series_uid}/viewer").content.decode()
    header = client.get(f"{base}instances/{expected.sop_uid}/header").content.decode()

    assert escape(expected.patient_name) in study_page
    start = viewer.index('<script id="viewer-data" type="application/json">')
    overlay = json.loads(viewer[viewer.index(">", start) + 1:viewer.index("</script>", start)])["overlay"]
    assert overlay["PatientName"] == person_name(expected.patient_name)
    if expected.texts["InstitutionName"]:
        assert overlay["InstitutionName"] == expected.texts["InstitutionName"]
    assert escape(expected.patient_name) in header


def test_a_physician_with_one_non_ascii_name_part_sees_the_study_that_names_him(tmp_path):
    physician = make_user("juergen", first_name="Jürgen", last_name="Smith")
    ingest_file(make_file(tmp_path, "a.dcm", ReferringPhysicianName="SMITH^JÜRGEN", SpecificCharacterSet="ISO_IR 192"),
                Origin("import"))

    assert Study.objects.visible_to(physician).count() == 1


def test_a_group_member_sees_the_study_of_the_institution_its_description_names_in_any_case(tmp_path):
    member = make_user("nurse")
    group = UserGroup.objects.create(name="koeln", description="Universitätsklinikum Köln")
    group.members.add(member)
    ingest_file(make_file(tmp_path, "a.dcm", InstitutionName="UNIVERSITÄTSKLINIKUM KÖLN",
                          SpecificCharacterSet="ISO_IR 192"), Origin("import"))

    assert Study.objects.visible_to(member).count() == 1


@pytest.mark.parametrize("name", ["utf8-mueller", "latin1", "gb18030", "chrH32.dcm", "chrKoreanMulti.dcm"])
def test_an_uploaded_file_is_indexed_as_pydicom_decodes_it(client, tmp_path, name):
    path = corpus_file(name, tmp_path)
    client.force_login(make_user("up", ["upload"]))

    response = client.post("/upload/", {"files": [SimpleUploadedFile("a.dcm", path.read_bytes())]})

    assert response.status_code == 202
    assert_indexed_as_pydicom_decodes(path)
