"""`manage.py import_prompts`: import a prompt set from a file, a save_to_disk folder or a hub dataset id.

Without --layout and column flags the mapping is guessed from the columns (as the browser's preview does);
any flag given overrides the guess. The import is all or nothing unless --skip-bad-rows.
"""
from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from runs.importing import LAYOUTS, BadInput, ImportOptions, import_prompt_set, open_source, preview
from runs.importing.importer import label_values
from runs.importing.options import parse_label_map
from runs.models import PromptSet

# flag name → ImportOptions field; values are parsed by argparse types below
_MAPPING_FLAGS = ("layout", "prompt_column", "input_column", "messages_column", "chosen_column", "rejected_column",
                  "response_a_column", "response_b_column", "label_column", "dedupe")


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


class Command(BaseCommand):
    help = "Import prompts (JSONL, JSON, CSV, Parquet, a save_to_disk folder or .zip, or a hub id) as a prompt set."

    def add_arguments(self, parser):
        parser.add_argument("source", help="File or folder path, or a hub dataset id with --hub.")
        parser.add_argument("--name", help="Prompt set name (default: the file's name).")
        parser.add_argument("--description", default="")
        parser.add_argument("--hub", action="store_true", help="SOURCE is a Hugging Face Hub dataset id.")
        parser.add_argument("--split", dest="dataset_split", default="", help="Split of a DatasetDict or hub dataset.")
        parser.add_argument("--config", dest="dataset_config", default="", help="Hub dataset config name.")
        parser.add_argument("--layout", choices=LAYOUTS)
        for flag in _MAPPING_FLAGS[1:-1]:
            parser.add_argument("--" + flag.replace("_", "-"), dest=flag)
        parser.add_argument("--vote-columns", type=_csv, help="Comma-separated annotator columns (pairwise).")
        parser.add_argument("--metadata-columns", type=_csv, default=[], help="Comma-separated columns to keep.")
        parser.add_argument("--label-map", default="",
                            help="Labels/votes other than A/B/tie, e.g. 1=A,2=B,0=tie (PandaLM) or 0=A,1=B,2=tie.")
        parser.add_argument("--subset-column", default="", help="Column kept as each pair's subset (pairwise).")
        parser.add_argument("--dedupe", choices=("prompt", "pair", "none"))
        parser.add_argument("--pair-source", default="", help="Name stored with reference pairs.")
        parser.add_argument("--no-reference-pairs", action="store_true", help="Do not keep reference pairs.")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--eval-ratio", type=float, default=0.1)
        parser.add_argument("--limit", type=int, default=0, help="Keep at most N prompts (0 = all).")
        parser.add_argument("--shuffle", action="store_true", help="Read rows in a seeded shuffled order.")
        parser.add_argument("--skip-bad-rows", action="store_true", help="Skip and list bad rows instead of failing.")
        parser.add_argument("--a-is-chosen", action="store_true",
                            help="Pairwise without label or votes: response A is always the preferred reply.")
        parser.add_argument("--scalars-as-text", action="store_true",
                            help="Store numbers and true/false found where text belongs as text (noted per row).")
        parser.add_argument("--max-prompt-chars", type=int, default=ImportOptions.max_prompt_chars)
        parser.add_argument("--batch-size", type=int, default=ImportOptions.batch_size)
        parser.add_argument("--preview", action="store_true", help="Show the mapping and first rows; import nothing.")

    def handle(self, *args, **opts):
        source = None
        try:
            source = open_source(opts["source"], hub=opts["hub"])
            base = ImportOptions(dataset_split=opts["dataset_split"], dataset_config=opts["dataset_config"])
            guessed = preview(source, base).suggested
            given = {f: opts[f] for f in (*_MAPPING_FLAGS, "vote_columns") if opts.get(f) is not None}
            same_layout = "layout" not in given or given["layout"] == guessed.get("layout")
            mapping = {**guessed, **given} if same_layout else given
            if opts["a_is_chosen"]:
                mapping["a_is_chosen"] = True
            mapping["label_map"] = parse_label_map(opts["label_map"])
            if opts["subset_column"]:
                mapping["subset_column"] = opts["subset_column"]
            options = ImportOptions(
                **mapping,
                pair_source=opts["pair_source"], keep_reference_pairs=not opts["no_reference_pairs"],
                metadata_columns=opts["metadata_columns"], seed=opts["seed"], eval_ratio=opts["eval_ratio"],
                limit=opts["limit"], shuffle=opts["shuffle"], skip_bad_rows=opts["skip_bad_rows"],
                scalars_as_text=opts["scalars_as_text"],
                max_prompt_chars=opts["max_prompt_chars"], dataset_split=opts["dataset_split"],
                dataset_config=opts["dataset_config"], batch_size=opts["batch_size"],
            ).validate()
            labels = label_values(source, options)
            if labels:
                shown = (f"{v['value']!r} x{v['count']} (e.g. {source.unit} {v['row']}) -> "
                         f"{v['maps_to'] or 'needs --label-map'}" for v in labels)
                self.stdout.write("Label values: " + ", ".join(shown))
            if opts["preview"]:
                self._show_preview(source, options)
                return
            name = opts["name"] or source.name
            if PromptSet.objects.filter(name=name).exists():
                raise CommandError(f"a prompt set named {name!r} exists; choose another --name")
            prompt_set = import_prompt_set(
                name, source, options, description=opts["description"], progress=self._progress
            )
        except BadInput as exc:
            raise CommandError(str(exc)) from exc
        finally:
            if source is not None:
                source.close()  # a zip's extracted contents
        report = prompt_set.import_report
        if sys.stderr.isatty():
            sys.stderr.write("\n")
        self.stdout.write(
            f"Imported prompt set #{prompt_set.pk} {prompt_set.name!r}: {report['prompts']} prompts "
            f"(train {report['splits']['train']}, eval {report['splits']['eval']}) from {report['rows_read']} rows; "
            f"{report['duplicates']} duplicates dropped, {report['reference_pairs']} reference pairs, "
            f"{report['skipped_count']} bad rows skipped, {report['seconds']:.1f} s."
        )
        for item in report["skipped"]:
            field = f"{item['field']}: " if item["field"] else ""
            self.stdout.write(f"  skipped {item['unit']} {item['row']}: {field}{item['error']}")
        for item in report["warnings"][:20]:
            self.stdout.write(f"  note, {item['unit']} {item['row']}: {item['warning']}")

    def _progress(self, rows_read: int, prompts: int, expected: int | None) -> None:
        if sys.stderr.isatty():
            total = f"/{expected}" if expected else ""
            sys.stderr.write(f"\r{rows_read}{total} rows read, {prompts} prompts")
            sys.stderr.flush()

    def _show_preview(self, source, options) -> None:
        result = preview(source, options)
        self.stdout.write(f"Columns: {', '.join(result.columns)}")
        columns = [*options.required_columns(), *options.optional_columns()]
        self.stdout.write(f"Mapping: layout={options.layout}, columns: {', '.join(columns)}")
        for item in result.parsed:
            head = f"{source.unit} {item['row']}: "
            shown = f"ERROR {item['error']}" if item["error"] else " ".join(item["text"].split())[:200]
            self.stdout.write(head + shown)
