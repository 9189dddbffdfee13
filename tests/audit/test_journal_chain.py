"""The journal cannot be rewritten quietly: a keyed MAC chain (key outside the database), the head
exported off the database (log, syslog, mail), `verifyjournal` against both; CSV escaping."""

import csv
import io
import logging
import re
import socket
import stat

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from audit import chain
from audit.journal import Action, Outcome, current_head, record, verify_chain
from audit.models import Entry, JournalHead
from audit.report import csv_lines
from audit.syslog import Rfc5424Handler
from pacsone.settings import parse_syslog_url

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def own_key(settings, tmp_path):
    settings.PACS_JOURNAL_KEY_FILE = tmp_path / "keys" / "journal.key"
    chain.forget_key()
    yield settings.PACS_JOURNAL_KEY_FILE
    chain.forget_key()


def some_entries(n=5):
    return [record(Action.VIEW, patient_id=f"P{i}", study_uid=f"1.2.{i}", address="10.0.0.1") for i in range(n)]


def _raw(sql, *params):
    with connection.cursor() as cursor:
        cursor.execute(sql.replace("?", "%s"), params)


def rewrite_with_plain_chain() -> None:
    """What someone with database access but not the key does: recompute a SHA-256 chain over
    the rows as they now are, and the head row."""
    previous = chain.GENESIS
    entries = list(Entry.objects.order_by("id"))
    for entry in entries:
        entry.previous_hash = previous
        previous = chain.plain_sha256(chain.entry_fields(entry))
        _raw("UPDATE audit_entry SET previous_hash = ?, hash = ? WHERE id = ?", entry.previous_hash, previous, entry.pk)
    _raw("UPDATE audit_journalhead SET last_entry_id = ?, last_hash = ?, count = ?", entries[-1].pk, previous, len(entries))


def test_it_detects_a_row_edited_with_a_recomputed_plain_chain():
    entries = some_entries(5)
    call_command("verifyjournal")
    _raw("UPDATE audit_entry SET patient_id = ? WHERE id = ?", "SOMEONE", entries[2].pk)
    rewrite_with_plain_chain()
    with pytest.raises(CommandError, match=f"entry id {entries[0].pk}: its contents were changed"):
        call_command("verifyjournal")


def test_it_detects_the_newest_entries_deleted_against_an_exported_head(tmp_path):
    entries = some_entries(5)
    head = current_head()
    assert head == chain.Head(entries[-1].pk, 5, entries[-1].hash)
    log_file = tmp_path / "pacsone.log"
    log_file.write_text(f"2026-12-01 10:00:00 INFO audit.head pid=1 {head.line()}\n")
    call_command("verifyjournal", head=[f"{head.entry_id}:{head.mac}"], log=[str(log_file)])
    _raw("DELETE FROM audit_entry WHERE id >= ?", entries[3].pk)
    _raw("UPDATE audit_journalhead SET last_entry_id = ?, last_hash = ?, count = ?", entries[2].pk, entries[2].hash, 3)
    assert verify_chain().ok  # the database alone cannot tell ...
    with pytest.raises(CommandError, match=f"entry id {head.entry_id}, an exported head, is no longer in the database"):
        call_command("verifyjournal", head=[f"{head.entry_id}:{head.mac}"])  # ... the exported head can
    with pytest.raises(CommandError, match="no longer in the database"):
        call_command("verifyjournal", log=[str(log_file)])


def test_it_refuses_a_head_that_is_not_one():
    some_entries(1)
    with pytest.raises(CommandError, match="not a journal head"):
        call_command("verifyjournal", head=["12:xyz"])


def test_it_exports_the_head_to_the_log_every_n_entries(settings, caplog, django_capture_on_commit_callbacks):
    settings.PACS_JOURNAL_HEAD_EVERY = 3
    settings.PACS_JOURNAL_HEAD_MINUTES = 60
    chain.export_head(chain.Head(0, 0, chain.GENESIS))  # as if this process had just exported one
    caplog.set_level(logging.INFO, logger="audit.head")
    caplog.clear()
    with django_capture_on_commit_callbacks(execute=True):
        entries = some_entries(7)
    lines = [r.getMessage() for r in caplog.records if r.name == "audit.head"]
    assert lines == [f"journal head id={entries[2].pk} count=3 mac={entries[2].hash}",
                     f"journal head id={entries[5].pk} count=6 mac={entries[5].hash}"]


def test_a_rolled_back_entry_exports_no_head(settings, caplog, django_capture_on_commit_callbacks):
    settings.PACS_JOURNAL_HEAD_EVERY = 1
    caplog.set_level(logging.INFO, logger="audit.head")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        record(Action.SEARCH, detail="inside a transaction that will roll back")
    assert len(callbacks) == 1  # exported only if (and once) the caller's transaction commits


def test_it_sends_the_head_to_syslog_in_rfc_5424():
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    handler = Rfc5424Handler("udp", "127.0.0.1", receiver.getsockname()[1])
    logger = logging.getLogger("audit.head")
    logger.addHandler(handler)
    try:
        chain.export_head(chain.Head(42, 42, "ab" * 32))
        message = receiver.recv(4096).decode()
    finally:
        logger.removeHandler(handler)
        handler.close()
        receiver.close()
    # <authpriv.info>1 TIMESTAMP HOST APP PROCID MSGID STRUCTURED-DATA MSG
    assert re.fullmatch(r"<86>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z \S+ pacsone \d+ journal-head - "
                        r"journal head id=42 count=42 mac=(ab){32}", message), message


def test_it_frames_syslog_over_tcp_by_octet_counting():
    server = socket.create_server(("127.0.0.1", 0))
    handler = Rfc5424Handler("tcp", "127.0.0.1", server.getsockname()[1])
    try:
        handler.emit(logging.makeLogRecord({"msg": "journal head id=1 count=1 mac=" + "0" * 64, "levelno": logging.INFO}))
        peer, _ = server.accept()
        peer.settimeout(5)
        data = peer.recv(4096).decode()
        peer.close()
    finally:
        handler.close()
        server.close()
    length, _, message = data.partition(" ")
    assert int(length) == len(message.encode()) and message.startswith("<86>1 ")


def test_syslog_url_is_validated():
    assert parse_syslog_url("udp://logs.example.org:514") == ("udp", "logs.example.org", 514)
    assert parse_syslog_url("tcp://[::1]:6514") == ("tcp", "::1", 6514)
    assert parse_syslog_url("") is None
    for bad in ("logs:514", "http://logs:514", "udp://logs", "udp://logs:99999"):
        with pytest.raises(ImproperlyConfigured, match="PACS_SYSLOG_URL"):
            parse_syslog_url(bad)


def test_csv_cells_that_a_spreadsheet_would_evaluate_are_escaped():
    names = ["=HYPERLINK(\"http://x\")", "+1+1", "-2", "@SUM(A1)", "\tTAB", "\rCR", "plain-name"]
    for name in names:
        record(Action.LOGIN_FAILED, username=name, outcome=Outcome.FAILURE)
    rows = list(csv.DictReader(io.StringIO("".join(csv_lines(Entry.objects.all())))))
    assert [row["username"] for row in rows] == ["'" + name for name in names[:-1]] + ["plain-name"]


def test_the_key_file_is_created_once_with_mode_0600(own_key):
    assert not own_key.exists()
    first = some_entries(1)[0]
    assert stat.S_IMODE(own_key.stat().st_mode) == 0o600
    assert len(bytes.fromhex(own_key.read_text().strip())) == 32
    key = own_key.read_text()
    chain.forget_key()
    some_entries(1)
    assert own_key.read_text() == key  # never overwritten
    assert first.hash == chain.mac(chain.entry_fields(first), bytes.fromhex(key.strip()))
    assert first.hash != chain.plain_sha256(chain.entry_fields(first))


def test_verifyjournal_without_the_key_says_so(own_key):
    some_entries(2)
    own_key.unlink()
    chain.forget_key()
    with pytest.raises(CommandError, match="journal key .* is missing"):
        call_command("verifyjournal")
    assert not own_key.exists()  # verifying never makes a new key


def test_another_key_breaks_the_chain(own_key):
    some_entries(2)
    own_key.write_text("11" * 32)
    chain.forget_key()
    assert not verify_chain().ok


@pytest.mark.django_db(transaction=True)
def test_upgrading_re_chains_old_entries_and_says_whether_the_old_chain_held():
    executor = MigrationExecutor(connection)
    executor.migrate([("audit", "0002_mailserver")])
    try:
        old = MigrationExecutor(connection).loader.project_state(("audit", "0002_mailserver")).apps
        OldEntry = old.get_model("audit", "Entry")
        previous = chain.GENESIS
        from django.utils import timezone
        for i in range(3):
            entry = OldEntry(timestamp=timezone.now(), action="view", patient_id=f"P{i}", previous_hash=previous)
            entry.hash = previous = chain.plain_sha256(chain.entry_fields(entry))
            entry.save()
        old.get_model("audit", "JournalHead").objects.create(pk=1, last_entry_id=entry.pk, last_hash=previous, count=3)
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
    report = verify_chain()
    assert report.ok and report.checked == 4
    cut_over = Entry.objects.latest("id")
    assert cut_over.username == "(upgrade)" and "3 entries" in cut_over.detail and "was intact" in cut_over.detail
    assert JournalHead.objects.get(pk=1).count == 4


@pytest.mark.django_db(transaction=True)
def test_an_entry_inside_a_rolled_back_transaction_leaves_the_chain_whole():
    from django.db import transaction

    first = record(Action.VIEW, detail="before")
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            record(Action.MODIFY, detail="the change failed after its entry")
            raise RuntimeError("the change failed")
    after = record(Action.VIEW, detail="after")
    assert list(Entry.objects.order_by("id").values_list("detail", flat=True)) == ["before", "after"]
    assert after.previous_hash == first.hash
    report = verify_chain(heads=[current_head()])
    assert report.ok and report.checked == 2
