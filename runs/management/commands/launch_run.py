"""`manage.py launch_run`: launch a run from a script or CI with the same options and validation as the
launch form: the config (preset, then ``--config``, then each ``--set``; :func:`runs.forms.requested_config`) is
validated as it is by :class:`runs.forms.LaunchForm` (:func:`runs.forms.direct_launch_form`).

Examples::

    python manage.py launch_run --preset offline-demo --name demo \\
        --constitution "Helpful, harmless and honest (starter)" --prompt-set "Demo prompts (starter)" \\
        --set generation.max_prompts=20 --wait
    python manage.py launch_run --config run.yaml --stages generate,label --estimate-only
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from constitutions.models import ConstitutionVersion
from runs.devices import QUEUES_PATH
from runs.estimate import estimate_for
from runs.forms import direct_launch_form, requested_config
from runs.models import PromptSet, Run
from runs.presets import PRESETS
from training.config import ConfigError


def parse_assignment(text: str) -> tuple[list[str], object]:
    """``judge.concurrency=4`` → (["judge", "concurrency"], 4); the value is parsed as YAML (numbers,
    true/false, lists; ``1e-4`` is a number too, though YAML 1.1 reads it as text), anything else stays text.

    Raises:
        CommandError: no ``=`` or an empty path.
    """
    path, sep, raw = text.partition("=")
    if not sep or not path.strip():
        raise CommandError(f"--set {text!r}: expected PATH=VALUE, e.g. judge.concurrency=4")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as text: a number written so is a number
        try:
            value = float(value) if value.strip().lower() not in ("nan", "inf", "-inf", "+inf", "infinity") else value
        except ValueError:
            pass
    return path.strip().split("."), value


def load_config_file(path: str) -> dict:
    """A run config from a JSON or YAML file.

    Raises:
        CommandError: the file is missing, unparsable, or not a mapping (the message names the file).
    """
    file = Path(path)
    if not file.is_file():
        raise CommandError(f"--config {path}: no such file")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))  # YAML is a superset of JSON
    except yaml.YAMLError as exc:
        raise CommandError(f"--config {path}: not valid JSON/YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise CommandError(f"--config {path}: must hold a mapping of config sections, got {type(data).__name__}")
    return data


def find_version(spec: str) -> ConstitutionVersion:
    """A constitution version from an id (``12``), a name (its latest version) or ``name@v3``.

    Raises:
        CommandError: nothing matches.
    """
    qs = ConstitutionVersion.objects.select_related("constitution")
    if spec.isdigit():
        version = qs.filter(pk=int(spec)).first()
    else:
        name, _, number = spec.rpartition("@v") if "@v" in spec else (spec, "", "")
        versions = qs.filter(constitution__name=name)
        if number:
            if not number.isdigit():
                raise CommandError(f"--constitution {spec!r}: the version after '@v' must be a number")
            versions = versions.filter(number=int(number))
        version = versions.order_by("-number").first()
    if version is None:
        raise CommandError(f"--constitution {spec!r}: no such constitution version (give an id, a name or name@vN)")
    return version


def find_prompt_set(spec: str) -> PromptSet:
    """A prompt set by id or name.

    Raises:
        CommandError: nothing matches.
    """
    prompt_set = PromptSet.objects.filter(pk=int(spec)).first() if spec.isdigit() else None
    prompt_set = prompt_set or PromptSet.objects.filter(name=spec).first()
    if prompt_set is None:
        raise CommandError(f"--prompt-set {spec!r}: no such prompt set (give an id or a name)")
    return prompt_set


def config_fields_help() -> str:
    """Every config field a ``--set`` may name, with its type, default and help (from the config dataclasses'
    docstrings: :func:`training.config.field_help`), for ``launch_run --help``."""
    import dataclasses
    import typing

    from runs.stages.registry import config_sections
    from training.config import RunConfig, field_help

    lines = ["config fields (--set PATH=VALUE; --config FILE with the same sections):"]
    section_types = typing.get_type_hints(RunConfig)
    for spec in config_sections():
        cls = section_types[spec.config_section]
        helps, hints = field_help(cls), typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            kind = hints[f.name]
            kind = "|".join(map(str, typing.get_args(kind))) if typing.get_origin(kind) is typing.Literal else \
                getattr(kind, "__name__", str(kind))
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # a list: []
            lines.append(f"  {spec.config_section}.{f.name} ({kind}, default {default!r}): {helps.get(f.name, '')}")
    return "\n".join(lines)


class Command(BaseCommand):
    help = "Launch a run (same options and checks as the launch form)."

    def create_parser(self, prog_name, subcommand, **kwargs):
        import argparse

        parser = super().create_parser(prog_name, subcommand, formatter_class=argparse.RawDescriptionHelpFormatter,
                                       **kwargs)
        parser.epilog = config_fields_help()
        return parser

    def add_arguments(self, parser):
        parser.add_argument("--name", help="Run name (default: the preset's label).")
        parser.add_argument("--constitution", required=True,
                            help="Constitution version: id, name (latest) or name@vN.")
        parser.add_argument("--prompt-set", required=True, help="Prompt set id or name.")
        parser.add_argument("--preset", choices=sorted(PRESETS),
                            help="Start from a preset (default: the config defaults).")
        parser.add_argument("--config", help="JSON or YAML file with config sections, merged over the preset.")
        parser.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                            help="Override one config field, e.g. --set judge.concurrency=4 (repeatable).")
        parser.add_argument("--stages", help="Comma-separated stages (default: the preset's, or generate..evaluate).")
        parser.add_argument("--owner", help="Username recorded as the run's owner.")
        parser.add_argument("--estimate-only", action="store_true", help="Print the estimate; launch nothing.")
        parser.add_argument("--wait", action="store_true",
                            help="Run the queued jobs in this process until the run stops (a burst worker).")
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def handle(self, *args, **options):
        preset = PRESETS[options["preset"]] if options["preset"] else None
        overrides = []
        for assignment in options["set"]:
            path, value = parse_assignment(assignment)
            overrides.append((".".join(path), value))
        try:
            config, stages = requested_config(
                options["preset"], load_config_file(options["config"]) if options["config"] else None, overrides
            )
        except ConfigError as exc:
            raise CommandError(f"--set {exc.path}: {exc.message}" if exc.path != "preset" else str(exc)) from None
        if options["stages"]:
            stages = options["stages"].split(",")
        owner = None
        if options["owner"]:
            owner = get_user_model().objects.filter(username=options["owner"]).first()
            if owner is None:
                raise CommandError(f"--owner {options['owner']!r}: no such user")
        form = direct_launch_form(
            config,
            name=options["name"] or (preset.label if preset else "run"),
            constitution_version=find_version(options["constitution"]),
            prompt_set=find_prompt_set(options["prompt_set"]),
            stages=[s.strip() for s in stages if s.strip()],
        )
        if not form.is_valid():
            raise CommandError("Invalid run:\n" + "\n".join(
                f"  {'config' if k == '__all__' else k.replace('__', '.')}: {' '.join(str(e) for e in v)}"
                for k, v in form.errors.items()
            ))
        cleaned = form.cleaned_data
        est = estimate_for(
            cleaned["run_config"], cleaned["prompt_set"], cleaned["constitution_version"], cleaned["stages"]
        )
        if options["estimate_only"]:
            self._print({"estimate": est.as_dict()}, options, text=self._estimate_text(est))
            return
        run = form.launch(owner)
        queue_note = cleaned["preflight"].fallbacks.get(QUEUES_PATH)
        if queue_note and not (options["json"] or options["wait"]):  # --wait runs the stages here
            self.stdout.write(self.style.WARNING(f"Warning: {queue_note}"))  # no worker on the gpu queue yet
        if options["wait"]:
            self._work()
            run.refresh_from_db()
        elif not options["json"]:
            from django.conf import settings

            if settings.EMBEDDED_QUEUE:
                self.stdout.write(self.style.WARNING(
                    "No REDIS_URL: the embedded queue lives in this process, so the run starts at the next "
                    "`manage.py studio` start (or launch with --wait to run it here)."))
        result = self._result(run, est)
        self._print(result, options, text=(
            f"Launched run #{run.pk} {run.name!r}: {run.status_display.lower()}; stages "
            f"{', '.join(cleaned['stages'])}; {est.comparisons} comparisons, {est.judge_calls} judge calls."
        ))
        if options["wait"] and run.status == "failed":
            failed = run.stages.filter(status="failed").first()
            raise CommandError(f"run #{run.pk} failed in {failed.stage if failed else '?'}: "
                               f"{(failed.error.splitlines() or [''])[0] if failed else ''}")

    def _work(self) -> None:
        import django_rq

        from rlaif_site.queueing import queue_names

        worker = django_rq.get_worker(*queue_names(), worker_class="rq.worker.SimpleWorker")
        worker.work(burst=True)

    def _result(self, run: Run, est) -> dict:
        stages = {s.stage: {"status": s.status, "done": s.progress_done, "total": s.progress_total}
                  for s in run.ordered_stages()}
        return {"run": run.pk, "name": run.name, "status": run.status, "stages": stages, "estimate": est.as_dict()}

    def _estimate_text(self, est) -> str:
        lines = [f"{k.replace('_', ' ')}: {v}" for k, v in est.as_dict().items() if k != "warnings"]
        return "\n".join(lines + [f"warning: {w}" for w in est.warnings])

    def _print(self, data: dict, options, text: str) -> None:
        self.stdout.write(json.dumps(data, indent=2) if options["json"] else text)
