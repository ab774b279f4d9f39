"""Stage functions used to exercise the job machinery (queue, claiming, progress, cancel, resume)
independently of the ML stages."""
import dataclasses

from runs.models import Run
from runs.stages.registry import STAGES
from training.progress import check_cancelled

UNITS = 5


def use_stage_function(monkeypatch, stage: str, function: str) -> None:
    """For one test, make ``stage``'s job call the function at dotted path ``function``."""
    monkeypatch.setitem(STAGES, stage, dataclasses.replace(STAGES[stage], function=function))


def counting_stage(stage_run, reporter):
    """Do UNITS units of work, reporting progress and a loss metric for each."""
    for i in range(UNITS):
        check_cancelled(reporter)
        reporter.progress(i + 1, UNITS, f"unit {i + 1}")
        reporter.metric(i, {"loss": 1.0 / (i + 1)})
    reporter.log("counted")


def failing_stage(stage_run, reporter):
    reporter.progress(1, 3)
    raise ValueError("boom: the policy model path does not exist")


def cancelled_midway_stage(stage_run, reporter):
    """Like counting_stage, but the user presses cancel after two units."""
    for i in range(UNITS):
        if i == 2:
            Run.objects.filter(pk=stage_run.run_id).update(cancel_requested=True)
            reporter._last_cancel_check = 0  # let the reporter look at the flag now
        check_cancelled(reporter)
        reporter.progress(i + 1, UNITS)
