"""`manage.py aes add|list|remove|echo`: the remote AE registry from the shell."""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User, UserGroup
from audit.journal import Action, record
from pacsone.dicom import scu
from pacsone.models import RemoteAE, Scope
from pacsone.web.forms import RemoteAEForm

PERMISSIONS = (
    ("store", "may_store", "may send images to us (C-STORE)"),
    ("query", "may_query", "may query and retrieve from us (C-FIND, C-MOVE, C-GET)"),
    ("move-destination", "is_move_destination", "may receive C-MOVE results"),
    ("queryable", "is_queryable", "we may query and retrieve from it"),
    ("commitment", "requests_storage_commitment", "after routing to it, request storage commitment (N-ACTION)"),
)


def describe(ae: RemoteAE) -> str:
    allowed = [flag for flag, field, _help in PERMISSIONS if getattr(ae, field)]
    calls = f" from {ae.networks}" if ae.networks else ""
    return f"{ae.ae_title} {ae.host}:{ae.port} [{', '.join(allowed) or 'nothing'}]{calls} sees {ae.sees()}"


class Command(BaseCommand):
    help = "Manage the remote AE registry: add (or update), list, remove, echo."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        add = actions.add_parser("add", help="Register a remote AE, or update the one with this AE title.")
        add.add_argument("ae_title")
        add.add_argument("host")
        add.add_argument("port", type=int)
        add.add_argument("--description", default=None)
        for flag, field, text in PERMISSIONS:
            add.add_argument(f"--{flag}", dest=field, action="store_true", default=None, help=text)
            add.add_argument(f"--no-{flag}", dest=field, action="store_false", help=f"not: {text}")
        add.add_argument("--from", dest="networks", default=None, metavar="ADDRESSES",
                         help="where its calls may come from: IPs, host names or CIDR networks, comma-separated "
                              "(default: HOST; '' resets to HOST)")
        scope = add.add_mutually_exclusive_group()
        scope.add_argument("--user", default=None, metavar="USERNAME",
                           help="its C-FIND/C-MOVE/C-GET see only what this user may see")
        scope.add_argument("--group", default=None, metavar="NAME",
                           help="its C-FIND/C-MOVE/C-GET see only what this group's members may see")
        scope.add_argument("--whole-archive", action="store_true",
                           help="unlink it: its queries see the whole archive (the default for a new AE)")
        actions.add_parser("list", help="List the registered remote AEs.")
        remove = actions.add_parser("remove", help="Remove a remote AE.")
        remove.add_argument("ae_title")
        echo = actions.add_parser("echo", help="C-ECHO a registered remote AE.")
        echo.add_argument("ae_title")

    def handle(self, *args, **options):
        getattr(self, f"do_{options['action']}")(options)

    def _get(self, ae_title: str) -> RemoteAE:
        ae = RemoteAE.objects.filter(ae_title=ae_title.strip()).first()
        if ae is None:
            raise CommandError(f"{ae_title} is not registered (see `aes list`)")
        return ae

    def do_add(self, options):
        existing = RemoteAE.objects.filter(ae_title=options["ae_title"].strip()).first()
        data = {"ae_title": options["ae_title"], "host": options["host"], "port": options["port"],
                "description": options["description"] if options["description"] is not None
                else (existing.description if existing else "")}
        for _flag, field, _text in PERMISSIONS:
            chosen = options[field]
            default = getattr(existing, field) if existing else RemoteAE._meta.get_field(field).default
            data[field] = default if chosen is None else chosen
        data["networks"] = options["networks"] if options["networks"] is not None else (existing.networks if existing else "")
        data.update(self._scope(options, existing))
        form = RemoteAEForm(data, instance=existing)
        if not form.is_valid():
            problems = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items())
            raise CommandError(problems)
        ae = form.save()
        verb = "updated" if existing else "added"
        record(Action.CONFIGURATION, username="(shell)", target=f"remote AE {ae.ae_title}", detail=f"{verb}: {describe(ae)}")
        self.stdout.write(f"{verb} {describe(ae)}")

    def _scope(self, options, existing: RemoteAE | None) -> dict:
        if options["user"]:
            user = User.objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"user: there is no user {options['user']!r}")
            return {"scope": Scope.USER, "user": user.pk}
        if options["group"]:
            group = UserGroup.objects.filter(name=options["group"]).first()
            if group is None:
                raise CommandError(f"group: there is no group {options['group']!r}")
            return {"scope": Scope.GROUP, "group": group.pk}
        if options["whole_archive"] or existing is None:
            return {"scope": Scope.ALL}
        return {"scope": existing.scope, "user": existing.user_id, "group": existing.group_id}

    def do_list(self, options):
        for ae in RemoteAE.objects.order_by("ae_title"):
            line = describe(ae)
            self.stdout.write(f"{line}  {ae.description}" if ae.description else line)

    def do_remove(self, options):
        ae = self._get(options["ae_title"])
        text = describe(ae)
        ae.delete()
        record(Action.CONFIGURATION, username="(shell)", target=f"remote AE {ae.ae_title}", detail=f"removed: {text}")
        self.stdout.write(f"removed {text}")

    def do_echo(self, options):
        ae = self._get(options["ae_title"])
        try:
            code = scu.echo(ae)
        except scu.ScuError as error:
            raise CommandError(str(error)) from None
        if code != 0:
            raise CommandError(f"{ae.ae_title} answered C-ECHO with status 0x{code:04X}")
        self.stdout.write(f"{ae.ae_title} answered C-ECHO: success")
