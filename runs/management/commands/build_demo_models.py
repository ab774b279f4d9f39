"""``manage.py build_demo_models``: build the offline demo policy and judge (``demo://policy``,
``demo://judge``) under ``MODELS_DIR/demo/``; see :mod:`training.demo_models`."""
from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from training.demo_models import DEMO_MODELS, ensure_demo_models
from training.modeling import demo_path
from training.progress import NullReporter


class _PrintingReporter(NullReporter):
    def __init__(self, write) -> None:
        self.write = write

    def log(self, line: str) -> None:
        self.write(line)


class Command(BaseCommand):
    help = (
        "Build the small offline demo models (a tiny policy and a tiny judge trained on the demo data, seconds on "
        "a CPU). They only show a run's wiring; use hub ids, local paths or a vLLM endpoint for real runs."
    )

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="rebuild models that already exist")

    def handle(self, *args, force: bool = False, **options):
        built = ensure_demo_models(settings.MODELS_DIR, _PrintingReporter(self.stdout.write), force=force)
        for name in DEMO_MODELS:
            state = "built" if name in built else "already present"
            self.stdout.write(f"{name}: {state} at {demo_path(name, settings.MODELS_DIR)}")
