"""`manage.py aes`: add (and update), list, remove, echo; bad input refused with a reason."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.models import UserGroup
from audit.models import Entry
from pacsone.models import RemoteAE
from tests.helpers import free_port
from tests.people import make_user

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
    assert "ARCHIVE archive.local:11112 [query, move-destination, queryable] sees whole archive" in listing
    assert "CT1 10.0.0.5:104 [store, query, move-destination] sees whole archive  CT scanner" in listing
    # add again updates: the port changes, the rest stays.
    assert "updated CT1 10.0.0.5:4242" in aes("add", "CT1", "10.0.0.5", "4242", "--no-query")
    ct = RemoteAE.objects.get(ae_title="CT1")
    assert (ct.port, ct.description, ct.may_query, ct.may_store) == (4242, "CT scanner", False, True)
    assert "removed CT1" in aes("remove", "CT1")
    assert not RemoteAE.objects.filter(ae_title="CT1").exists()
    assert Entry.objects.filter(action="configuration", target="remote AE CT1").count() == 3


def test_routing_may_ask_an_ae_for_storage_commitment():
    assert "[store, query, move-destination, commitment]" in aes("add", "ARCHIVE2", "10.0.0.9", "104", "--commitment")
    assert RemoteAE.objects.get(ae_title="ARCHIVE2").requests_storage_commitment
    aes("add", "ARCHIVE2", "10.0.0.9", "104", "--no-commitment")
    assert not RemoteAE.objects.get(ae_title="ARCHIVE2").requests_storage_commitment


def test_it_links_an_ae_to_a_user_or_a_group_and_lists_it():
    make_user("jane", first_name="Jane", last_name="Smith")
    UserGroup.objects.create(name="radiology", description="General Hospital")
    assert "sees user jane" in aes("add", "JANEWS", "10.1.2.3", "104", "--user", "jane")
    assert "from 10.1.0.0/16 sees group radiology" in aes("add", "WARD", "ward.local", "104", "--group", "radiology",
                                                          "--from", "10.1.0.0/16")
    listing = aes("list")
    assert "JANEWS 10.1.2.3:104 [store, query, move-destination] sees user jane" in listing
    assert "WARD ward.local:104 [store, query, move-destination] from 10.1.0.0/16 sees group radiology" in listing
    aes("add", "JANEWS", "10.1.2.3", "4242")  # an update without a scope option keeps the link
    assert RemoteAE.objects.get(ae_title="JANEWS").sees() == "user jane"
    assert "sees whole archive" in aes("add", "JANEWS", "10.1.2.3", "4242", "--whole-archive")
    entries = Entry.objects.filter(action="configuration", target="remote AE JANEWS").order_by("id")
    assert [("sees user jane" in e.detail, "sees whole archive" in e.detail) for e in entries] == [
        (True, False), (True, False), (False, True)]


@pytest.mark.parametrize("args,problem", [
    (("add", "OK", "h", "104", "--user", "nobody"), "no user 'nobody'"),
    (("add", "OK", "h", "104", "--group", "nogroup"), "no group 'nogroup'"),
    (("add", "OK", "h", "104", "--from", "10.1.0.0/99"), "networks"),
    (("add", "OK", "h", "104", "--from", "two words"), "networks"),
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
