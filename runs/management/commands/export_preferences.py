"""`manage.py export_preferences RUN_ID`: a run's AI-labelled preferences as a Hugging Face dataset
(save_to_disk folder) or JSON lines, in TRL's standard or conversational preference format."""
from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from runs.exporting import PreferenceFilters, preference_dataset, save_preferences
from runs.models import Artifact, Run


class Command(BaseCommand):
    help = "Export a run's preferences (prompt/chosen/rejected + judge metadata) for TRL."

    def add_arguments(self, parser):
        parser.add_argument("run_id", type=int)
        parser.add_argument("--out", help="Output folder (disk) or file (jsonl). Default: the run's artifacts "
                            "folder, recorded as a dataset artifact.")
        parser.add_argument("--format", choices=("disk", "jsonl"), default="disk")
        parser.add_argument("--conversational", action="store_true", help="Messages instead of plain text.")
        parser.add_argument("--min-confidence", type=float, default=0.0, help="|p_a - 0.5| * 2 at least this.")
        parser.add_argument("--position-consistent-only", action="store_true")
        parser.add_argument("--human-verified-only", action="store_true")
        parser.add_argument("--split", choices=("train", "eval"), default="")
        parser.add_argument("--ai-only", action="store_true", help="Ignore human labels when choosing chosen/rejected.")

    def handle(self, *args, **opts):
        run = Run.objects.filter(pk=opts["run_id"]).first()
        if run is None:
            raise CommandError(f"no run #{opts['run_id']}")
        try:
            filters = PreferenceFilters(
                min_confidence=opts["min_confidence"], position_consistent_only=opts["position_consistent_only"],
                human_verified_only=opts["human_verified_only"], split=opts["split"],
                prefer_human_labels=False if opts["ai_only"] else None,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        dataset = preference_dataset(run, filters, conversational=opts["conversational"])
        style = "conversational" if opts["conversational"] else "standard"
        name = f"preferences-{style}" + (".jsonl" if opts["format"] == "jsonl" else "")
        out = Path(opts["out"]) if opts["out"] else run.artifacts_dir / name
        save_preferences(dataset, out, opts["format"])
        if not opts["out"]:
            Artifact.objects.update_or_create(
                run=run, kind=Artifact.Kind.DATASET, name=name,
                defaults={"path": str(out), "metrics": {"rows": len(dataset), "format": opts["format"]}},
            )
        self.stdout.write(f"Exported {len(dataset)} preferences of run #{run.pk} ({style}, {opts['format']}) to {out}")
