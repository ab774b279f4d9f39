"""The pipeline's stages: one table that says, per stage, everything the rest of the app needs to know.

:data:`STAGES` is the only owner of stage knowledge. Everything else is derived from it: the ``Stage``
choices of :mod:`runs.models`, the pipeline order, the job function a worker calls, the RQ job timeout, the
queue a GPU set-up sends the job to, the launch form's config sections, the default stage selection of the
form, presets, ``launch_run`` and the API, which stages change the judge figures, and the stages an external
run may log under.

Adding a stage means writing its module (``runs/stages/<name>.py`` with ``run(stage_run, reporter)``) and
adding one :class:`StageSpec` here. Its config section, if it has one, is a field of
:class:`training.config.RunConfig`. Adding a stage value to the ``Stage`` choices changes them, so it also
needs a migration, which ``makemigrations`` generates.

This module imports nothing from the app, so :mod:`runs.models` can build its choices from it. Stage
functions are named by dotted path and imported on first use, which keeps torch out of the web process.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.utils.module_loading import import_string


@dataclass(frozen=True)
class StageSpec:
    """One stage of the pipeline.

    Parameters:
        name: the stage's name (``StageRun.stage``, the RQ job id's tail, the config's ``queues`` and
            ``timeouts`` keys).
        label: what pages show.
        function: dotted path of ``run(stage_run, reporter) -> None``, the work the job does.
        timeout_s: RQ ``job_timeout`` in seconds, unless the run config's ``timeouts`` overrides it.
        config_section: the :class:`training.config.RunConfig` field holding the stage's config, which is also
            the launch form's fieldset.
        section_title: the fieldset's title on the launch form.
        section_open: the fieldset starts open. Open fieldsets come first, then closed ones, each group in
            pipeline order.
        default: selected when a launch names no stages (the form, presets, ``launch_run``, the API).
        gpu_queue: its job goes to the ``gpu`` queue when a run sends model work there (the launch form's
            "Training stages on the 'gpu' queue", the single-GPU preset). Otherwise every job goes to
            ``default``.
        judging: it writes comparisons or judgments. The judge figures and pair counts change only when such
            a stage writes, so they are cached under these stages' state.
        metrics: it records metrics (``MetricPoint`` rows, drawn by :mod:`runs.charts`). An external training
            script may log its run under such a stage (:mod:`rlaif_site.api.external`).
    """

    name: str
    label: str
    function: str
    timeout_s: int
    config_section: str
    section_title: str
    section_open: bool = True
    default: bool = True
    gpu_queue: bool = False
    judging: bool = False
    metrics: bool = False


HOUR = 3600

#: Every stage, in the order a run goes through them (a run has a subset of them).
STAGES: dict[str, StageSpec] = {
    spec.name: spec
    for spec in (
        StageSpec(
            name="sft", label="Supervised fine-tuning", function="runs.stages.sft.run", timeout_s=6 * HOUR,
            config_section="sft", section_title="Supervised fine-tuning (optional stage)", section_open=False,
            default=False, gpu_queue=True, metrics=True,
        ),
        StageSpec(
            name="generate", label="Generate", function="runs.stages.generate.run", timeout_s=6 * HOUR,
            config_section="generation", section_title="Policy model and sampling", judging=True,
        ),
        StageSpec(
            name="label", label="AI labeling", function="runs.stages.label.run", timeout_s=12 * HOUR,
            config_section="judge", section_title="AI judge", judging=True,
        ),
        StageSpec(
            name="reward_model", label="Reward model", function="runs.stages.reward_model.run",
            timeout_s=6 * HOUR, config_section="reward_model", section_title="Reward model", gpu_queue=True,
            metrics=True,
        ),
        StageSpec(
            name="policy", label="Policy optimisation", function="runs.stages.policy.run", timeout_s=24 * HOUR,
            config_section="policy", section_title="RL fine-tuning", gpu_queue=True, metrics=True,
        ),
        StageSpec(
            name="evaluate", label="Evaluate", function="runs.stages.evaluate.run", timeout_s=6 * HOUR,
            config_section="evaluation", section_title="Evaluation", section_open=False, gpu_queue=True,
            judging=True, metrics=True,
        ),
    )
}

#: The stages a launch runs when it names none.
DEFAULT_STAGES: tuple[str, ...] = tuple(name for name, spec in STAGES.items() if spec.default)
#: The stages whose jobs go to the ``gpu`` queue when a run sends model work there.
GPU_STAGES: tuple[str, ...] = tuple(name for name, spec in STAGES.items() if spec.gpu_queue)
#: The stages that write comparisons or judgments.
JUDGING_STAGES: tuple[str, ...] = tuple(name for name, spec in STAGES.items() if spec.judging)
#: The stages that record metrics.
METRIC_STAGES: tuple[str, ...] = tuple(name for name, spec in STAGES.items() if spec.metrics)


def in_pipeline_order(names: Iterable[str]) -> list[str]:
    """Return the known stage names among ``names`` in pipeline order, without duplicates. Unknown names
    are dropped."""
    wanted = set(names)
    return [name for name in STAGES if name in wanted]


def pipeline_position(name: str) -> int:
    """Return where ``name`` comes in the pipeline (0 for the first stage). An unknown name sorts last."""
    return next((i for i, stage in enumerate(STAGES) if stage == name), len(STAGES))


def stage_function(name: str) -> Callable:
    """Return the ``run`` function of the stage ``name``, importing its module on first use.

    Raises:
        KeyError: ``name`` is not a known stage.
    """
    return import_string(STAGES[name].function)


def config_sections() -> list[StageSpec]:
    """Return the stages in the order the launch form shows their config sections: open fieldsets first,
    then closed ones, each group in pipeline order."""
    return sorted(STAGES.values(), key=lambda spec: not spec.section_open)
