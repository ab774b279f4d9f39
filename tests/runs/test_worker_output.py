"""A stage's log tail holds what its worker thread printed and logged (redacted), not other threads' output."""
import logging
import sys
import threading
import warnings

from runs.worker_output import worker_output
from training.progress import RecordingReporter


def test_prints_logs_and_warnings_of_the_thread_reach_the_reporter(monkeypatch, capsys):
    from transformers.utils import logging as hf_logging

    hf_logging.get_logger("transformers.test")  # transformers' logger stops propagating to the root
    monkeypatch.setenv("STUDIO_KEY_TEST", "sk-verysecretvalue123")
    from training import redaction

    if hasattr(redaction, "_secret_values"):
        monkeypatch.setattr(redaction, "_secret_values", None, raising=False)
    reporter = RecordingReporter()
    with warnings.catch_warnings(), worker_output(reporter):
        warnings.simplefilter("always")
        print("loading weights 1/2")
        print("progress 10%\rprogress 100%")
        logging.getLogger("transformers.test").warning("tokenizer has no pad token")
        logging.getLogger("transformers.test").debug("below the level: not shown")
        warnings.warn("something odd", UserWarning, stacklevel=1)
        sys.stderr.write("key sk-verysecretvalue123 echoed\n")
        sys.stdout.write("no newline at the end")
    assert "loading weights 1/2" in reporter.lines
    assert "progress 100%" in reporter.lines and "progress 10%\rprogress 100%" not in reporter.lines
    assert "WARNING transformers.test: tokenizer has no pad token" in reporter.lines
    assert not any("below the level" in line for line in reporter.lines)
    assert any("UserWarning: something odd" in line for line in reporter.lines)
    assert not any("sk-verysecretvalue123" in line for line in reporter.lines)
    assert any("echoed" in line for line in reporter.lines)
    assert reporter.lines[-1] == "no newline at the end"
    assert "loading weights 1/2" in capsys.readouterr().out  # the terminal still gets it


def test_other_threads_are_not_captured_and_streams_are_restored():
    reporter = RecordingReporter()
    before = sys.stdout, sys.stderr

    def web_request():
        print("GET /runs/ 200")
        logging.getLogger("django.request").warning("other thread")

    with worker_output(reporter):
        thread = threading.Thread(target=web_request)
        thread.start()
        thread.join()
        print("mine")
    assert reporter.lines == ["mine"]
    assert (sys.stdout, sys.stderr) == before
    for logger in (logging.getLogger(), logging.getLogger("transformers")):
        assert not [h for h in logger.handlers if type(h).__name__ == "_ThreadHandler"]


def printing_stage(stage_run, reporter):
    """A stage double that talks the way libraries do."""
    print("Loading checkpoint shards: 100%")
    logging.getLogger("trl.trainer").warning("padding side set to left")


def test_a_stage_run_keeps_what_its_worker_printed_in_its_log_tail(db, monkeypatch):
    from runs.jobs import run_stage
    from runs.models import StageRun, StageStatus
    from tests import factories
    from tests.runs.stage_doubles import use_stage_function

    use_stage_function(monkeypatch, "generate", "tests.runs.test_worker_output.printing_stage")
    run = factories.make_run(stages=("generate",))
    stage_run = StageRun.objects.get(run=run)
    StageRun.objects.filter(pk=stage_run.pk).update(status=StageStatus.QUEUED)
    assert run_stage(stage_run.pk) == StageStatus.SUCCEEDED
    tail = StageRun.objects.get(pk=stage_run.pk).log_tail.splitlines()
    assert tail[0] == "generate: started (attempt 1)" and tail[-1] == "generate: done"
    assert "Loading checkpoint shards: 100%" in tail
    assert "WARNING trl.trainer: padding side set to left" in tail
