"""`manage.py studio`: everything a fresh machine needs to run RLAIF Studio, in one command.

Applies migrations, creates starter data on an empty database, re-enqueues stages a previous stop
interrupted (and, from then on, every few seconds any stage whose worker was lost: :mod:`runs.recovery`),
then serves the site (waitress, in a thread) while a worker consumes jobs in the main thread
(RQ installs signal handlers there). Ctrl-C stops both: a running stage stops at its next safe point and
resumes at the next start.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

import django_rq
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from waitress import create_server

from rlaif_site.queueing import queue_names
from rlaif_site.wsgi import application
from runs.recovery import start_monitor
from runs.services import recover_interrupted
from runs.starter import ensure_starter_data

#: Set by the first SIGINT/SIGTERM. The KeyboardInterrupt the handler raises is lost when the signal lands while
#: a weakref finalizer or ``__del__`` runs ("Exception ignored in ..."): start-up checks this before it blocks.
STOP_REQUESTED = threading.Event()


def _interrupt(signum, frame):
    STOP_REQUESTED.set()
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _stop_on_signals() -> None:
    """SIGINT and SIGTERM stop the server cleanly, also where SIGINT was inherited as ignored (a process
    started with ``&`` from a script) or where a supervisor sends SIGTERM."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)


class Command(BaseCommand):
    help = "Migrate, create starter data, serve the site and run a job worker (Ctrl-C stops all)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="Interface to serve on (default 127.0.0.1).")
        parser.add_argument("--port", type=int, default=8000, help="Port to serve on (default 8000).")
        parser.add_argument("--threads", type=int, default=8, help="Web server threads (default 8).")
        parser.add_argument("--no-worker", action="store_true", help="Serve only; run workers separately.")
        parser.add_argument(
            "--extra-workers",
            type=int,
            default=0,
            help="With REDIS_URL: start this many `rqworker` processes besides the one in this process.",
        )

    def handle(self, *args, **options):
        if options["extra_workers"] and settings.EMBEDDED_QUEUE:
            raise CommandError("--extra-workers needs REDIS_URL: the embedded queue lives inside this process.")
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Database ready.")
        self._starter_data()
        recovered = recover_interrupted()
        if recovered:
            self.stdout.write(f"Resumed {len(recovered)} interrupted stage(s): {', '.join(map(str, recovered))}")

        try:
            server = create_server(application, host=options["host"], port=options["port"], threads=options["threads"])
        except OSError as exc:
            raise CommandError(
                f"cannot serve on {options['host']}:{options['port']} ({exc.strerror}); choose another with --port"
            ) from exc
        web = threading.Thread(target=server.run, name="web", daemon=True)
        _stop_on_signals()  # the worker, when there is one, installs RQ's own handlers over these
        extra: list[subprocess.Popen] = []
        try:  # from here on, Ctrl-C (even during start-up) stops everything cleanly
            web.start()
            extra = [
                subprocess.Popen([sys.executable, "manage.py", "rqworker", *queue_names()], cwd=settings.BASE_DIR)
                for _ in range(options["extra_workers"])
            ]
            mode = "embedded queue" if settings.EMBEDDED_QUEUE else f"Redis at {settings.REDIS_URL}"
            self.stdout.write(
                self.style.SUCCESS(
                    f"RLAIF Studio on http://{options['host']}:{options['port']}/ ({mode}). Ctrl-C stops."
                )
            )
            sys.stdout.flush()
            if options["no_worker"]:
                start_monitor()  # with a worker, the worker starts it
                while web.is_alive() and not STOP_REQUESTED.is_set():  # a timed join lets Ctrl-C through
                    web.join(0.5)
            else:
                connections.close_all()  # a forking worker must not share the parent's DB connections
                worker = django_rq.get_worker(*queue_names())
                if not STOP_REQUESTED.is_set():  # a stop whose KeyboardInterrupt was swallowed during start-up
                    worker.work(with_scheduler=False, logging_level="INFO")
        except KeyboardInterrupt:
            pass
        finally:
            self.stdout.write("Stopping…")
            server.close()
            for proc in extra:
                proc.terminate()
            for proc in extra:
                proc.wait(timeout=30)
            self.stdout.write("Stopped.")

    def _starter_data(self) -> None:
        report = ensure_starter_data()
        if report.admin_created:
            if report.admin_password:
                self.stdout.write(
                    self.style.WARNING(
                        f"Created admin account '{report.admin_username}' with password: {report.admin_password}\n"
                        "  (shown once; set STUDIO_ADMIN_PASSWORD to choose it, or change it in the admin)"
                    )
                )
            else:
                self.stdout.write(
                    f"Created admin account '{report.admin_username}' (password from STUDIO_ADMIN_PASSWORD)."
                )
        if report.constitution_created:
            self.stdout.write("Created the starter constitution.")
        if report.prompt_set_created:
            self.stdout.write("Created the demo prompt set.")
