"""PostgreSQL's one refusal the other databases do not share: no NUL character in text.

A `text`/`varchar` value cannot hold U+0000 and `jsonb` refuses the `\\u0000` escape, while a
DICOM text value may carry a stray NUL (padding in the middle of a value, a broken writer).
SQLite and MariaDB store such a value; PostgreSQL failed the whole ingest ("could not index the
instance") or the search that quoted it. On PostgreSQL every text parameter and every JSON
document therefore goes to the server without its NUL characters: the index holds the value as
shown (a NUL shows as nothing), searches compare the same way, and the file keeps its bytes.
Values are checked with one `in` test; only those with a NUL are rebuilt.
"""

from django.db.backends.signals import connection_created
from psycopg.types.json import Jsonb, JsonbDumper
from psycopg.types.string import StrDumperUnknown

NUL = "\x00"


def without_nul(value):
    """`value` (a JSON-like tree) with NUL dropped from every string, keys included."""
    if isinstance(value, str):
        return value.replace(NUL, "")
    if isinstance(value, dict):
        return {without_nul(key): without_nul(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [without_nul(item) for item in value]
    return value


class NulFreeStrDumper(StrDumperUnknown):  # the text dumper Django's client-side cursors use
    def dump(self, obj):
        return super().dump(obj.replace(NUL, "") if NUL in obj else obj)

    def quote(self, obj):
        return super().quote(obj.replace(NUL, "") if NUL in obj else obj)


class NulFreeJsonbDumper(JsonbDumper):
    def dump(self, obj):
        data = super().dump(obj)
        if b"\\u0000" not in bytes(data):
            return data
        return super().dump(Jsonb(without_nul(obj.obj), obj.dumps))


def register(sender, connection, **kwargs) -> None:
    if connection.vendor != "postgresql":
        return
    connection.connection.adapters.register_dumper(str, NulFreeStrDumper)
    connection.connection.adapters.register_dumper(Jsonb, NulFreeJsonbDumper)


def connect_signal() -> None:
    connection_created.connect(register, dispatch_uid="pacsone.postgresql.register")
