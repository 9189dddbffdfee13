"""`manage.py aes`: add (and update), list, remove, echo; bad input refused with a reason."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from audit.models import Entry
from pacsone.models import RemoteAE
from tests.helpers import free_port

pytestmark = pytest.mark.django_db


def aes(*args) -> str:
    out = StringIO()
    call_command("aes", *args, stdout=out)
    return out.getvalue()


def test_add_list_update_remove():
    assert "added CT1 10.0.0.5:104 [store, query, move-destination]" in aes("add", "CT1", "10.0.0.5", "104",
                                                                          "--description", "CT scanner")
    aes("add", "ARCHIVE", "archive.local", "11112", "--queryable", "--no-store")
    listing = aes("list")
    assert "ARCHIVE archive.local:11112 [query, move-destination, queryable]" in listing
    assert "CT1 10.0.0.5:104 [store, query, move-destination]  CT scanner" in listing
    # add again updates: the port changes, the rest stays.
    assert "updated CT1 10.0.0.5:4242" in aes("add", "CT1", "10.0.0.5", "4242", "--no-query")
    ct = RemoteAE.objects.get(ae_title="CT1")
    assert (ct.port, ct.description, ct.may_query, ct.may_store) == (4242, "CT scanner", False, True)
    assert "removed CT1" in aes("remove", "CT1")
    assert not RemoteAE.objects.filter(ae_title="CT1").exists()
    assert Entry.objects.filter(action="configuration", target="remote AE CT1").count() == 3


@pytest.mark.parametrize("args,problem", [
    (("add", "THIS_TITLE_IS_TOO_LONG", "h", "104"), "ae_title"),
    (("add", "BAD\\AE", "h", "104"), "ae_title"),
    (("add", "   ", "h", "104"), "ae_title"),
    (("add", "OK", "h", "70000"), "port"),
    (("add", "OK", "two words", "104"), "host"),
    (("remove", "NOBODY"), "not registered"),
    (("echo", "NOBODY"), "not registered"),
])
def test_bad_input(args, problem):
    with pytest.raises(CommandError, match=problem):
        aes(*args)
    assert not RemoteAE.objects.filter(ae_title="OK").exists()


def test_echo(scp):
    _ae, port = scp
    aes("add", "PACSONE", "127.0.0.1", str(port))
    assert "PACSONE answered C-ECHO: success" in aes("echo", "PACSONE")
    aes("add", "DEAD", "127.0.0.1", str(free_port()))
    with pytest.raises(CommandError, match="cannot be reached"):
        aes("echo", "DEAD")
