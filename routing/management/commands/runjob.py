from django.core.management.base import BaseCommand, CommandError

from routing.models import Job
from routing.runner import run_due, serve
from pacsone.humanize import count


class Command(BaseCommand):
    help = ("Run a claimed job (the job dispatcher starts `runjob PK TOKEN`), then the jobs that fall "
            "due while there is work; or with --due claim and run the jobs due now, then exit.")

    def add_arguments(self, parser):
        parser.add_argument("job", nargs="?", type=int)
        parser.add_argument("token", nargs="?")
        parser.add_argument("--due", action="store_true", help="claim and run the jobs due now")
        parser.add_argument("--serve", action="store_true", help="wait for jobs falling due shortly and run them")

    def handle(self, *args, **options):
        if options["due"]:
            ran = run_due()
            self.stdout.write(f"ran {count(len(ran), 'job', 'jobs')}")
            return
        if options["serve"]:
            self.stdout.write(f"ran {count(serve(), 'job', 'jobs')}")
            return
        if not options["job"] or not options["token"]:
            raise CommandError("give a job number and its lease token, or --due")
        if not Job.objects.filter(pk=options["job"], claimed_by=options["token"]).exists():
            raise CommandError(f"job {options['job']} is not held by {options['token']}")
        ran = serve(options["job"], options["token"])
        self.stdout.write(f"ran {count(ran, 'job', 'jobs')}")
