"""ReporterCallback: a trainer's logs become metrics, a stop request stops it at a checkpoint."""
from types import SimpleNamespace

from transformers import TrainerControl

from training.callbacks import ReporterCallback, numeric_logs
from training.progress import RecordingReporter


def _state(step: int, max_steps: int = 10):
    return SimpleNamespace(global_step=step, max_steps=max_steps)


def test_finite_scalars_are_forwarded_with_their_step_and_prefix():
    reporter = RecordingReporter()
    callback = ReporterCallback(reporter, prefix="rm/")
    logs = {"loss": 0.5, "rewards/fn/mean": 1, "epoch": 0.3, "grad_norm": float("nan"), "note": "x", "flag": True}
    callback.on_log(None, _state(3), TrainerControl(), logs=logs)
    assert reporter.metrics == [(3, {"rm/loss": 0.5, "rm/rewards/fn/mean": 1.0})]
    assert numeric_logs({"train_runtime": 2.0, "kl": float("inf")}) == {}


def test_a_stop_request_saves_stops_and_drops_the_cut_short_train_loss():
    reporter = RecordingReporter(stop_after=2)
    callback = ReporterCallback(reporter, "policy: rloo")
    control = callback.on_step_end(None, _state(1), TrainerControl())
    assert not control.should_training_stop and not callback.stopped
    callback.on_log(None, _state(1), control, logs={"loss": 0.9})
    control = callback.on_step_end(None, _state(2), TrainerControl())
    assert control.should_save and control.should_training_stop and callback.stopped
    callback.on_log(None, _state(2), control, logs={"train_loss": 0.8, "train_runtime": 1.0})
    assert reporter.metrics == [(1, {"loss": 0.9})]  # the summary of the interrupted run is not a point
    assert reporter.progress_calls == [(1, 10, "policy: rloo"), (2, 10, "policy: rloo")]
