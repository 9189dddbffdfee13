"""The journal's keyed chain: each entry's MAC covers the previous entry's MAC and its own fields.

- The MAC is HMAC-SHA256 with a key kept outside the database (`PACS_JOURNAL_KEY_FILE`, by
  default `journal.key` in the data folder, created with mode 0600 on first use). Someone who
  can write the database but not read that file cannot recompute the chain after editing a row.
- The chain's head (newest entry id and MAC) is exported off the database: one `journal head`
  line to the log every PACS_JOURNAL_HEAD_EVERY entries and at least every
  PACS_JOURNAL_HEAD_MINUTES (also to syslog when PACS_SYSLOG_URL is set), and in the monthly
  mail. Deleting the newest entries and fixing the head row is then caught by `verifyjournal
  --log` (or `--head ID:MAC`): the exported head must still be in the database.
"""

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

head_log = logging.getLogger("audit.head")
log = logging.getLogger(__name__)

GENESIS = "0" * 64
KEY_BYTES = 32
HEAD_LINE = re.compile(r"journal head id=(\d+) count=(\d+) mac=([0-9a-f]{64})")

_key_lock = threading.Lock()
_keys: dict[str, bytes] = {}  # key file path -> key (a test may point the setting elsewhere)
_last_export = {"at": 0.0}


class JournalKeyError(Exception):
    """The key file exists but cannot be used."""


def key_path() -> Path:
    return Path(settings.PACS_JOURNAL_KEY_FILE)


def journal_key(create: bool = True) -> bytes:
    """The MAC key: read once per process; created (0600, never overwritten) on first use.
    With create=False (verifying) a missing key file is an error, not a new key."""
    path = key_path()
    cached = _keys.get(str(path))
    if cached is not None:
        return cached
    if not create and not path.exists():
        raise JournalKeyError(f"the journal key {path} is missing (restore it, or set PACS_JOURNAL_KEY_FILE)")
    with _key_lock:
        if str(path) not in _keys:
            _keys[str(path)] = _load_or_create(path)
    return _keys[str(path)]


def _load_or_create(path: Path) -> bytes:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_hex(KEY_BYTES) + "\n")
            file.flush()
            os.fsync(file.fileno())
        log.warning("journal key created path=%s (keep a copy off this machine: without it the journal "
                    "cannot be verified)", path)
    if path.stat().st_mode & 0o077:
        log.warning("journal key is readable by others path=%s mode=%o (chmod 600 it)", path, path.stat().st_mode & 0o777)
    text = path.read_text().strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise JournalKeyError(f"{path} does not hold a hex key") from None
    if len(key) < 16:
        raise JournalKeyError(f"{path} holds a key of {len(key)} bytes; at least 16 are needed")
    return key


def forget_key() -> None:
    """For tests that point PACS_JOURNAL_KEY_FILE elsewhere."""
    with _key_lock:
        _keys.clear()


def entry_fields(entry) -> list:
    """What an entry's MAC covers, in a fixed order (the same list the old SHA-256 covered)."""
    return [
        entry.previous_hash,
        entry.timestamp.isoformat(timespec="microseconds"),
        entry.username,
        entry.address,
        entry.ae_title,
        entry.action,
        entry.patient_id,
        entry.study_uid,
        entry.target,
        entry.outcome,
        entry.detail,
    ]


def mac(fields: list, key: bytes | None = None) -> str:
    message = json.dumps(fields, ensure_ascii=False).encode()
    return hmac.new(journal_key() if key is None else key, message, hashlib.sha256).hexdigest()


def plain_sha256(fields: list) -> str:
    """The chain before 2026-12 (no key): kept to check the old chain when re-keying it."""
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode()).hexdigest()


# --- The exported head --------------------------------------------------------------------------


@dataclass(frozen=True)
class Head:
    entry_id: int
    count: int
    mac: str

    def line(self) -> str:
        return f"journal head id={self.entry_id} count={self.count} mac={self.mac}"


def export_head(head: Head) -> None:
    head_log.info(head.line())
    _last_export["at"] = time.monotonic()


def maybe_export_head(head: Head) -> None:
    """After a commit: export every N entries, or when this process has not for a while."""
    due = head.count % settings.PACS_JOURNAL_HEAD_EVERY == 0
    overdue = time.monotonic() - _last_export["at"] >= settings.PACS_JOURNAL_HEAD_MINUTES * 60
    if due or overdue or not _last_export["at"]:
        export_head(head)


def heads_in(text: str) -> list[Head]:
    """Every `journal head` line in a log (or syslog) file's text, oldest first."""
    return [Head(int(i), int(c), m) for i, c, m in HEAD_LINE.findall(text)]


def parse_head(text: str) -> Head:
    """`ID:MAC` (as given to `verifyjournal --head`) or a whole `journal head ...` line."""
    found = heads_in(text)
    if found:
        return found[-1]
    entry_id, sep, value = text.strip().partition(":")
    if not sep or not entry_id.isdigit() or not re.fullmatch(r"[0-9a-f]{64}", value):
        raise ValueError(f"not a journal head (ID:MAC or a 'journal head' log line): {text!r}")
    return Head(int(entry_id), 0, value)
