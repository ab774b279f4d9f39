"""The label stage: Judgment rows from the run's judge under its pinned constitution version, resume after an
interruption to exactly one judgment per comparison and principle, failures kept and judged again, the
request cache, the budget cap, and the whole generate → label path through the job queue."""

from __future__ import annotations

import pytest
from django.db.models import Count, Sum

from constitutions.models import Principle
from runs import services
from runs.models import (
    Comparison,
    Completion,
    JudgeCacheEntry,
    JudgeCharge,
    Judgment,
    Prompt,
    RunStatus,
    StageRun,
    StageStatus,
)
from runs.prompt_content import content_hash
from runs.stages import label
from runs.stages.judging import JudgeUnavailable, judge_comparisons
from tests import factories
from training.progress import Cancelled, NullReporter, RecordingReporter


def _judge_config(server, **overrides) -> dict:
    return {"backend": "openai", "base_url": server.url, "model": "judge", "max_retries": 0, "max_reasks": 0,
            **overrides}


def _run(server, n: int, *, prompt_text: str = "", principles=None, judge=None, **judge_overrides):
    version = factories.make_version(principles=principles) if principles else None
    run = factories.make_run(
        stages=("label",),
        config={"judge": judge or _judge_config(server, **judge_overrides)},
        constitution_version=version,
    )
    prompt = run.prompt_set.prompts.first()
    if prompt_text:
        prompt = Prompt.objects.create(
            prompt_set=run.prompt_set, index=100, text=prompt_text, content_hash=content_hash(prompt_text)
        )
    for i in range(n):
        factories.make_comparison(run, prompt, texts=(f"a longer answer number {i}", "short"))
    return run, StageRun.objects.get(run=run, stage="label")


def _per_unit_counts(run):
    return list(
        Judgment.objects.filter(comparison__run=run)
        .values("comparison", "principle")
        .annotate(n=Count("pk"))
        .values_list("n", flat=True)
    )


@pytest.mark.django_db
def test_label_stage_writes_one_debiased_judgment_per_comparison(chat_server):
    run, stage_run = _run(chat_server, 5)
    reporter = RecordingReporter()
    label.run(stage_run, reporter)

    judgments = Judgment.objects.filter(comparison__run=run)
    assert judgments.count() == 5
    version_principles = set(Principle.objects.filter(version=run.constitution_version).values_list("pk", flat=True))
    for judgment in judgments:
        assert judgment.judge_id == f"openai:judge@{chat_server.url}"
        assert judgment.principle_id in version_principles
        assert (judgment.p_a_ab, judgment.p_a_ba, judgment.p_a) == (1.0, 1.0, 1.0)
        assert judgment.verdict == "A" and judgment.position_consistent is True
        assert judgment.rationale == "Response A is longer and more detailed."
        assert [r["order"] for r in judgment.raw_outputs] == ["A/B", "B/A"]
        assert judgment.prompt_tokens > 0 and judgment.attempts == 2 and judgment.error == ""
    assert reporter.progress_calls[0][:2] == (0, 5) and reporter.progress_calls[-1][:2] == (5, 5)
    assert "5 judged (0 failed)" in reporter.lines[-1]
    # the principle follows the comparison: judging again is a no-op
    assert judge_comparisons(run, Comparison.objects.filter(run=run), NullReporter())["skipped"] == 5
    assert len(chat_server.requests) == 10


@pytest.mark.django_db
def test_every_enabled_principle_when_configured(chat_server):
    principles = [
        factories.principle("Honest"),
        factories.principle("Helpful"),
        factories.principle("Funny", enabled=False),
    ]
    run, stage_run = _run(chat_server, 3, principles=principles, principle_sampling="all")
    label.run(stage_run, NullReporter())
    names = Judgment.objects.filter(comparison__run=run).values_list("principle__name", flat=True)
    assert sorted(names) == ["Helpful"] * 3 + ["Honest"] * 3


@pytest.mark.django_db
def test_principles_are_drawn_by_what_is_compared_not_by_row_id(chat_server):
    """Two runs of the same seeds on the same samples judge each pair under the same principle, whatever
    order their rows were written in."""
    version = factories.make_version(principles=[factories.principle(n) for n in ("Honest", "Helpful", "Brief")])
    prompt_set = factories.make_prompt_set(n=4)
    drawn = []
    for order in (range(12), reversed(range(12))):
        run = factories.make_run(stages=("label",), config={"judge": _judge_config(chat_server)},
                                 constitution_version=version, prompt_set=prompt_set)
        for i in order:
            prompt = prompt_set.prompts.order_by("index")[i % 4]
            a, b = (Completion.objects.create(run=run, prompt=prompt, sample_index=2 * (i // 4) + k,
                                              text=f"answer {i}-{k}", model="tiny") for k in (0, 1))
            Comparison.objects.create(run=run, prompt=prompt, completion_a=a, completion_b=b)
        label.run(StageRun.objects.get(run=run, stage="label"), NullReporter())
        drawn.append(dict(
            Judgment.objects.filter(comparison__run=run).values_list("comparison__completion_a__text",
                                                                      "principle__name")
        ))
    assert len(drawn[0]) == 12 and drawn[0] == drawn[1]
    assert len(set(drawn[0].values())) > 1  # really drawn, not one principle for all


@pytest.mark.django_db
def test_interrupted_labeling_resumes_to_exactly_one_judgment_per_unit(chat_server):
    run, stage_run = _run(chat_server, 70, concurrency=4)  # batches of 32
    reporter = RecordingReporter(stop_after=2)  # the start, then one finished batch
    with pytest.raises(Cancelled):
        label.run(stage_run, reporter)
    assert Judgment.objects.filter(comparison__run=run).count() == 32

    class Crash(Exception):
        pass

    class CrashingReporter(RecordingReporter):
        def progress(self, done, total=None, message=""):
            super().progress(done, total, message)
            if len(self.progress_calls) == 2:
                raise Crash("worker killed")

    with pytest.raises(Crash):
        label.run(stage_run, CrashingReporter())
    assert Judgment.objects.filter(comparison__run=run).count() == 64

    finishing = RecordingReporter()
    counts = judge_comparisons(run, Comparison.objects.filter(run=run), finishing)
    assert counts == {"done": 6, "failed": 0, "skipped": 64, "total": 70, "budget_exhausted": False}
    assert _per_unit_counts(run) == [1] * 70
    assert finishing.progress_calls[0][:2] == (64, 70) and finishing.progress_calls[-1][:2] == (70, 70)


@pytest.mark.django_db
def test_failed_judgments_are_stored_counted_and_judged_again(chat_server):
    run, stage_run = _run(chat_server, 3, prompt_text="Which? #garbage", max_retries=1, max_reasks=1)
    counts = judge_comparisons(run, Comparison.objects.filter(run=run), NullReporter())
    assert counts["done"] == 3 and counts["failed"] == 3
    failed = Judgment.objects.filter(comparison__run=run)
    assert failed.count() == 3
    for judgment in failed:
        assert judgment.verdict == "" and judgment.p_a is None and judgment.failed
        assert "no verdict line" in judgment.error and judgment.attempts == 4
        assert "I cannot decide" in judgment.raw_outputs[0]["raw"]
    assert JudgeCacheEntry.objects.count() == 0  # failures are not cached
    pks = sorted(failed.values_list("pk", flat=True))

    again = judge_comparisons(run, Comparison.objects.filter(run=run), NullReporter())
    assert again["done"] == 3 and again["skipped"] == 0
    assert sorted(Judgment.objects.filter(comparison__run=run).values_list("pk", flat=True)) == pks


@pytest.mark.django_db
def test_a_failure_that_recovers_updates_its_row(chat_server):
    run, stage_run = _run(chat_server, 2, prompt_text="Which? #flaky", both_orders=False)
    first = judge_comparisons(run, Comparison.objects.filter(run=run), NullReporter())
    assert first["failed"] == 2
    second = judge_comparisons(run, Comparison.objects.filter(run=run), NullReporter())
    assert second == {"done": 2, "failed": 0, "skipped": 0, "total": 2, "budget_exhausted": False}
    assert list(Judgment.objects.filter(comparison__run=run).values_list("verdict", flat=True)) == ["A", "A"]
    assert _per_unit_counts(run) == [1, 1]


@pytest.mark.django_db
def test_a_dead_judge_fails_the_stage_fast(chat_server):
    run, stage_run = _run(chat_server, 20, prompt_text="Which? #error500")
    with pytest.raises(JudgeUnavailable, match="HTTP 500"):
        label.run(stage_run, NullReporter())
    assert Judgment.objects.filter(comparison__run=run, verdict="").count() == 20


@pytest.mark.django_db
def test_the_same_request_is_not_paid_for_twice(chat_server):
    principles = [factories.principle("Honest")]
    config = {"price_per_1k_prompt_tokens": 1.0, "price_per_1k_completion_tokens": 1.0}
    first, first_stage = _run(chat_server, 3, principles=principles, **config)
    label.run(first_stage, NullReporter())
    calls = len(chat_server.requests)
    assert calls == 6 and JudgeCacheEntry.objects.count() == 6
    assert all(j.cost > 0 for j in Judgment.objects.filter(comparison__run=first))

    second = factories.make_run(
        stages=("label",),
        config=first.config,
        constitution_version=first.constitution_version,
        prompt_set=first.prompt_set,
    )
    for i in range(3):
        factories.make_comparison(
            second, second.prompt_set.prompts.first(), texts=(f"a longer answer number {i}", "short")
        )
    judge_comparisons(second, Comparison.objects.filter(run=second), NullReporter())
    assert len(chat_server.requests) == calls
    repeated = Judgment.objects.filter(comparison__run=second)
    assert repeated.count() == 3 and all(j.cost == 0 and j.verdict == "A" for j in repeated)


def _ledger(run) -> float:
    return JudgeCharge.objects.filter(run=run).aggregate(s=Sum("cost"))["s"] or 0.0


@pytest.mark.django_db
def test_budget_cap_is_never_passed_and_the_ledger_is_what_was_paid(chat_server):
    run, stage_run = _run(chat_server, 100, price_per_1k_prompt_tokens=1.0, budget=3.0, concurrency=8)
    reporter = RecordingReporter()
    label.run(stage_run, reporter)
    stored = Judgment.objects.filter(comparison__run=run).count()
    assert 0 < stored < 100
    paid = chat_server.paid(1.0, 0.0)
    assert 2.0 < paid <= 3.0  # up to the cap, never above (the last reservations did not fit)
    assert _ledger(run) == pytest.approx(paid)
    assert JudgeCharge.objects.filter(run=run).count() == len(chat_server.requests)
    # a pair whose second order did not fit is not stored; its paid first order waits in the request cache
    assert sum(Judgment.objects.filter(comparison__run=run).values_list("cost", flat=True)) <= paid
    from runs.views.runs import run_counts

    assert run_counts(run)["cost"] == pytest.approx(paid)  # the run page shows the ledger
    from runs.models import Run
    from runs.summary import with_summary

    assert with_summary(Run.objects.filter(pk=run.pk)).get().cost == pytest.approx(paid)  # so does the run table
    assert any("budget" in line for line in reporter.lines)
    assert "budget cap" in reporter.lines[-1]
    assert not Judgment.objects.filter(comparison__run=run, verdict="").exists()  # unasked units are not failures


@pytest.mark.django_db
def test_the_ledger_keeps_what_failed_attempts_cost_when_they_are_judged_again(chat_server):
    run, stage_run = _run(chat_server, 3, prompt_text="Which? #flaky", both_orders=False,
                          price_per_1k_prompt_tokens=1.0, price_per_1k_completion_tokens=1.0)
    assert judge_comparisons(run, Comparison.objects.filter(run=run), NullReporter())["failed"] == 3
    assert judge_comparisons(run, Comparison.objects.filter(run=run), NullReporter())["failed"] == 0
    paid = chat_server.paid(1.0, 1.0)
    judged = sum(Judgment.objects.filter(comparison__run=run).values_list("cost", flat=True))
    assert judged == pytest.approx(paid) == pytest.approx(_ledger(run))  # 6 paid calls, none forgotten
    assert list(Judgment.objects.filter(comparison__run=run).values_list("attempts", flat=True)) == [2, 2, 2]


@pytest.mark.django_db
def test_a_timeout_mid_batch_keeps_the_answers_paid_for_and_the_resume_pays_nothing_twice(chat_server):
    """RQ's job timeout raises in the work-horse's main thread while a batch is in flight (SIGALRM)."""
    import signal

    class JobTimeout(Exception):
        pass

    def alarm(signum, frame):
        raise JobTimeout("job exceeded its timeout")

    chat_server.delay_s = 0.1
    run, stage_run = _run(chat_server, 40, concurrency=4, price_per_1k_prompt_tokens=1.0)  # 80 calls, ~2 s
    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, 0.8)
    try:
        with pytest.raises(JobTimeout):
            label.run(stage_run, NullReporter())
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    paid_before = len(chat_server.requests)
    assert 0 < paid_before < 80
    assert Judgment.objects.filter(comparison__run=run).count() == 0  # the first batch had not finished...
    assert JudgeCacheEntry.objects.count() == paid_before  # ...but every answer it paid for was kept
    assert _ledger(run) == pytest.approx(chat_server.paid(1.0, 0.0))

    label.run(stage_run, NullReporter())
    assert Judgment.objects.filter(comparison__run=run, verdict="A").count() == 40
    assert len(chat_server.requests) == 80  # each request paid exactly once over both attempts
    assert _ledger(run) == pytest.approx(chat_server.paid(1.0, 0.0))


@pytest.mark.django_db
def test_a_dead_endpoint_fails_fast_says_what_is_wrong_and_keeps_the_batch(chat_server):
    import time

    run, stage_run = _run(chat_server, 200, prompt_text="Which? #drop", max_retries=4, concurrency=8)
    started = time.perf_counter()
    with pytest.raises(JudgeUnavailable, match=r"stopped answering: .*did not answer 5 calls in a row") as info:
        label.run(stage_run, NullReporter())
    assert time.perf_counter() - started < 15
    assert chat_server.url in str(info.value) and "base_url" in str(info.value)
    assert chat_server.paths["POST /v1/chat/completions"] <= 5 + 8  # not 200 × 2 orders × 5 attempts
    stored = Judgment.objects.filter(comparison__run=run)
    assert stored.count() >= 32 and not stored.exclude(verdict="").exists()  # the batch in flight is stored


@pytest.mark.django_db
def test_an_unsupported_parameter_is_dropped_and_recorded_in_the_stage_log(chat_server):
    run, stage_run = _run(chat_server, 3, prompt_text="Which? #noseed", self_consistency=2, temperature=0.7,
                          concurrency=1)
    reporter = RecordingReporter()
    label.run(stage_run, reporter)
    assert Judgment.objects.filter(comparison__run=run, verdict="A").count() == 3
    assert any("does not take 'seed'; asking without it (HTTP 400" in line for line in reporter.lines)
    assert reporter.lines[-1].endswith("; asked without seed (refused by the endpoint)")  # the stage's summary


def _mixed_run(server, n_failing: int, n: int = 30, **judge_overrides):
    run = factories.make_run(stages=("label",), config={"judge": _judge_config(server, **judge_overrides)})
    prompt = run.prompt_set.prompts.first()
    for i in range(n):
        marker = " #garbage" if i < n_failing else ""
        factories.make_comparison(run, prompt, texts=(f"a longer answer number {i}{marker}", "short"))
    return run, StageRun.objects.get(run=run, stage="label")


@pytest.mark.django_db
def test_too_many_failed_judgments_fail_the_stage(chat_server):
    run, stage_run = _mixed_run(chat_server, 16)
    expected = r"16 of 30 judgments failed \(53%, above judge.max_failed_share 10%\)"
    with pytest.raises(label.TooManyFailed, match=expected):
        label.run(stage_run, NullReporter())


@pytest.mark.django_db
def test_a_stage_with_some_failed_judgments_says_so_wherever_its_status_shows(chat_server, client, operator):
    from django.urls import reverse

    from runs.views.runs import progress_state

    run, stage_run = _mixed_run(chat_server, 16, max_failed_share=0.6)
    label.run(stage_run, NullReporter())
    StageRun.objects.filter(pk=stage_run.pk).update(status=StageStatus.SUCCEEDED)
    run.status = RunStatus.SUCCEEDED
    run.save(update_fields=["status"])
    stage_run.refresh_from_db()
    assert stage_run.status_display == "Succeeded with 16 failed"
    assert run.status_display == "Succeeded with 16 failed"
    state = progress_state(run)
    assert state["status_display"] == "Succeeded with 16 failed"
    assert [s["status_display"] for s in state["stages"]] == ["Succeeded with 16 failed"]
    client.force_login(operator)
    assert "Succeeded with 16 failed" in client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert "Succeeded with 16 failed" in client.get(reverse("runs:list")).content.decode()


@pytest.mark.django_db
def test_no_comparisons_is_a_clear_error(chat_server):
    run, stage_run = _run(chat_server, 0)
    with pytest.raises(ValueError, match="generate stage first"):
        label.run(stage_run, NullReporter())


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_generate_then_label_through_the_job_queue(tiny_lm_dir, run_worker):
    run = services.launch_run(
        name="tiny loop",
        owner=None,
        constitution_version=factories.make_version(),
        prompt_set=factories.make_prompt_set(4),
        config={
            "generation": {"model": str(tiny_lm_dir), "max_new_tokens": 6, "samples_per_prompt": 2},
            "judge": {"backend": "transformers", "model": str(tiny_lm_dir)},
        },
        stages=["generate", "label"],
    )
    run_worker()
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    label_stage = run.stages.get(stage="label")
    assert label_stage.status == StageStatus.SUCCEEDED
    assert (label_stage.progress_done, label_stage.progress_total) == (4, 4)
    judgments = Judgment.objects.filter(comparison__run=run)
    assert judgments.count() == Comparison.objects.filter(run=run).count() == 4
    for judgment in judgments:
        assert judgment.judge_id == f"transformers:{tiny_lm_dir}"
        assert 0.0 < judgment.p_a < 1.0
        assert judgment.p_a == pytest.approx((judgment.p_a_ab + judgment.p_a_ba) / 2)
        assert judgment.verdict in ("A", "B", "tie")


def test_stage_modules_do_not_import_torch_or_transformers():
    """The web process and the worker's parent stay light: ML libraries load inside the job."""
    import subprocess
    import sys

    code = (
        "import django, os, sys; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'rlaif_site.settings');"
        "django.setup();"
        "import runs.stages.generate, runs.stages.label, runs.stages.judging, runs.judge_cache;"
        "import training.labeling, training.judges;"
        "heavy = sorted(m for m in ('torch', 'transformers', 'openai') if m in sys.modules); print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "[]"
