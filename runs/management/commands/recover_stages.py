"""`manage.py recover_stages`: find stages whose worker was lost and re-queue, fail or cancel them."""
from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from runs import recovery


class Command(BaseCommand):
    help = ("Find queued/running stages whose RQ worker was lost (killed worker or work-horse, vanished job) "
            "and re-queue them (bounded), fail them, or end them when their run was cancelled. Every worker "
            "and `studio` already does this every few seconds; this runs it from the shell or a timer.")

    def add_arguments(self, parser):
        parser.add_argument("--loop", type=float, default=0.0, metavar="SECONDS",
                            help="Repeat every SECONDS until interrupted (default: one pass).")

    def handle(self, *args, **options):
        while True:
            done = recovery.recover()
            for result in done:
                self.stdout.write(str(result))
            if not options["loop"]:
                if not done:
                    self.stdout.write("No lost stage.")
                return
            time.sleep(options["loop"])
