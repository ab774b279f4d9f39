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


def test_sample_callback_answers_fixed_prompts_at_start_saves_and_end(tmp_path):
    """The sample table's data: greedy answers per step; a fresh start empties the file, a resume appends,
    the end replaces a save at the same step; the model's training mode and padding side are restored."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tests.training.tiny import tiny_lm
    from training.callbacks import SampleCallback, read_samples

    path = tiny_lm(tmp_path / "lm", n_positions=64)
    model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "right"
    model.train()
    out = tmp_path / "samples.jsonl"
    out.write_text('{"step": 9, "when": "stale", "samples": []}\n')
    reporter = RecordingReporter()
    callback = SampleCallback(["Hello there?", [{"role": "user", "content": "Second prompt"}]], out, 5, reporter)
    kw = {"model": model, "processing_class": tokenizer}
    callback.on_train_begin(None, _state(0), TrainerControl(), **kw)
    callback.on_save(None, _state(2), TrainerControl(), **kw)
    callback.on_save(None, _state(4), TrainerControl(), **kw)
    callback.on_train_end(None, _state(4, max_steps=4), TrainerControl(), **kw)
    records = read_samples(out)
    assert [(r["step"], r["when"]) for r in records] == [(0, "start"), (2, "checkpoint"), (4, "end")]
    assert [s["prompt"] for s in records[0]["samples"]] == ["Hello there?", "Second prompt"]
    # greedy: the same weights give the same answers
    assert records[0]["samples"] == records[2]["samples"]
    assert all(isinstance(s["response"], str) for r in records for s in r["samples"])
    assert model.training and tokenizer.padding_side == "right"
    assert len(reporter.lines) == 4 and "step 2" in reporter.lines[1]

    # a resumed training (not at step 0) keeps what is there
    resumed = SampleCallback(["Hello there?"], out, 5)
    resumed.on_train_begin(None, _state(4), TrainerControl(), **kw)
    resumed.on_save(None, _state(6), TrainerControl(), **kw)
    assert [r["step"] for r in read_samples(out)] == [0, 2, 4, 6]
