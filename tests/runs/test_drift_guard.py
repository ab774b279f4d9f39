"""The drift guard with known answers: a real HTTP judge endpoint (FakeChatServer) that answers like the anchor
for one run and flipped for the next. Run 1, checked against human labels, passes and labels; run 2, anchored on
run 1's AI judgments, holds with a message naming the agreement and n, and an operator's release lets it label.
Also the launch pre-flight's anchor checks, the run page's card, the pair browser's id filter and the Judges
chart."""
from __future__ import annotations

import pytest
from django.urls import reverse

from benchmarks.fake_openai_server import FakeChatServer
from runs import drift, services
from runs.models import AnchorCheck, Judgment, RunStatus, StageStatus
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

PAIRS = 8
SAMPLE = 6


def _longer(first: str, second: str) -> str:
    return "A" if len(first) >= len(second) else "B"


class SwitchableJudge:
    """The endpoint's judge: the longer response wins, or (flipped) the shorter."""

    def __init__(self) -> None:
        self.flipped = False

    def __call__(self, prompt: str, first: str, second: str) -> str:
        label = _longer(first, second)
        return {"A": "B", "B": "A"}[label] if self.flipped else label


def _add_pairs(run) -> list:
    """PAIRS comparisons, the longer reply alternately on the A and the B side; their longer side."""
    prompt = run.prompt_set.prompts.first()
    out = []
    for i in range(PAIRS):
        long, short = f"a much longer and more careful answer number {i}", f"short {i}"
        texts = (long, short) if i % 2 == 0 else (short, long)
        out.append((factories.make_comparison(run, prompt, texts=texts), "A" if i % 2 == 0 else "B"))
    return out


def _judge(server, **anchor) -> dict:
    return {"backend": "openai", "base_url": server.url, "model": "judge", "max_retries": 0, "max_reasks": 0,
            "anchor_sample": SAMPLE, "anchor_min_agreement": 0.8, **anchor}


def _launch(version, config):
    return services.launch_run(name="drift", owner=None, constitution_version=version,
                               prompt_set=factories.make_prompt_set(), config=config, stages=["label"])


def test_a_flipped_judge_holds_the_run_until_released(run_worker):
    version = factories.make_version()
    anchor = factories.make_run(stages=(), constitution_version=version, status=RunStatus.SUCCEEDED)
    for comparison, longer in _add_pairs(anchor):
        factories.make_label(comparison, longer, external_annotator="annotator:1")
    switch = SwitchableJudge()
    with FakeChatServer(judge=switch) as server:
        # run 1: the judge answers like the humans did
        run1 = _launch(version, {"judge": _judge(server, anchor_run=anchor.pk, anchor_source="human")})
        _add_pairs(run1)
        run_worker()
        run1.refresh_from_db()
        assert run1.status == RunStatus.SUCCEEDED
        check1 = AnchorCheck.objects.get(run=run1)
        assert (check1.passed, check1.sampled, check1.n, check1.agree, check1.agreement) == (True, SAMPLE, SAMPLE,
                                                                                               SAMPLE, 1.0)
        assert check1.anchor_run == anchor and check1.disagreeing == []
        assert not Judgment.objects.filter(comparison__run=anchor).exists()  # re-judged in memory only
        assert Judgment.objects.filter(comparison__run=run1).count() == PAIRS
        assert "drift guard: agreement 100%" in run1.stages.get().log_tail

        # run 2: the endpoint now answers the other way; its anchor is run 1's AI judgments
        switch.flipped = True
        run1_judgments = list(Judgment.objects.filter(comparison__run=run1).values_list("pk", "verdict"))
        run2 = _launch(version, {"judge": _judge(server, anchor_run=run1.pk, anchor_source="ai")})
        _add_pairs(run2)
        run_worker()
        run2.refresh_from_db()
        stage = run2.stages.get()
        assert run2.status == RunStatus.WAITING and stage.status == StageStatus.WAITING
        check2 = AnchorCheck.objects.get(run=run2)
        assert (check2.passed, check2.n, check2.agree, check2.agreement) == (False, SAMPLE, 0, 0.0)
        assert len(check2.disagreeing) == SAMPLE and check2.holds
        # the request cache holds run 1's answers to these very requests: the check did not read it
        assert (f"agreement with run #{run1.pk}'s AI judgments is 0% [95% CI 0%–39%] on {SAMPLE} anchor pairs, "
                "below the threshold 80%") in stage.message
        assert "same id as run" in stage.message  # the judge id did not change: its answers did
        assert not Judgment.objects.filter(comparison__run=run2).exists()
        assert list(Judgment.objects.filter(comparison__run=run1).values_list("pk", "verdict")) == run1_judgments

        # an operator releases: the label stage goes on without checking again
        services.release_gate(run2)
        run_worker()
    run2.refresh_from_db()
    check2.refresh_from_db()
    assert run2.status == RunStatus.SUCCEEDED and not run2.gate_released
    assert check2.released_at is not None and AnchorCheck.objects.filter(run=run2).count() == 1
    assert Judgment.objects.filter(comparison__run=run2).exclude(verdict="").count() == PAIRS
    assert "released by an operator" in run2.stages.get().log_tail


def test_resume_instead_of_release_checks_again(run_worker):
    version = factories.make_version()
    anchor = factories.make_run(stages=(), constitution_version=version, status=RunStatus.SUCCEEDED)
    for comparison, longer in _add_pairs(anchor):
        factories.make_label(comparison, longer, external_annotator="annotator:1")
    switch = SwitchableJudge()
    switch.flipped = True
    with FakeChatServer(judge=switch) as server:
        run = _launch(version, {"judge": _judge(server, anchor_run=anchor.pk)})
        _add_pairs(run)
        run_worker()
        run.refresh_from_db()
        assert run.status == RunStatus.WAITING
        switch.flipped = False  # the endpoint was put right
        services.resume_run(run)
        run_worker()
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert list(AnchorCheck.objects.filter(run=run).order_by("pk").values_list("passed", flat=True)) == [False, True]


def test_cancel_ends_a_held_run(run_worker):
    version = factories.make_version()
    anchor = factories.make_run(stages=(), constitution_version=version, status=RunStatus.SUCCEEDED)
    for comparison, longer in _add_pairs(anchor):
        factories.make_label(comparison, {"A": "B", "B": "A"}[longer], external_annotator="annotator:1")
    with FakeChatServer() as server:  # longer wins; the humans preferred the shorter replies
        run = _launch(version, {"judge": _judge(server, anchor_run=anchor.pk)})
        _add_pairs(run)
        run_worker()
    run.refresh_from_db()
    assert run.status == RunStatus.WAITING
    services.cancel_run(run)
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.stages.get().status == StageStatus.CANCELLED


# --- launch pre-flight -----------------------------------------------------------------------------------------


def _form(judge: dict):
    from runs.forms import LaunchForm
    from runs.presets import PRESETS
    from tests.factories import launch_post_data

    config = PRESETS["offline-demo"].full_config()
    config["judge"].update(judge)
    data = launch_post_data(config, name="anchored", constitution_version=factories.make_version(),
                            prompt_set=factories.make_prompt_set(), stages=["generate", "label"])
    return LaunchForm(data)


def test_preflight_checks_the_anchor_run_and_its_pairs():
    form = _form({"anchor_run": 999999})
    assert not form.is_valid()
    assert "there is no run #999999" in " ".join(form.errors["judge__anchor_run"])

    anchor = factories.make_run(stages=(), status=RunStatus.SUCCEEDED)
    pairs = _add_pairs(anchor)
    for comparison, longer in pairs[:3]:
        factories.make_label(comparison, longer, external_annotator="annotator:1")
    factories.make_label(pairs[3][0], "tie", external_annotator="annotator:1")  # not an anchor pair
    form = _form({"anchor_run": anchor.pk, "anchor_sample": 4})
    assert not form.is_valid()
    assert f"run #{anchor.pk} has 3 pairs with a decisive human label" in " ".join(form.errors["judge__anchor_sample"])
    form = _form({"anchor_run": anchor.pk, "anchor_sample": 3})
    assert form.is_valid(), form.errors
    form = _form({"anchor_run": anchor.pk, "anchor_sample": 3, "anchor_source": "ai"})
    assert not form.is_valid() and "has 0 pairs with a decisive AI verdict" in str(form.errors)


# --- pages -----------------------------------------------------------------------------------------------------


def _held_run():
    """A run whose label stage waits on a failed check against an anchor run with two judged pairs."""
    anchor = factories.make_run(stages=(), status=RunStatus.SUCCEEDED)
    (first, _), (second, _) = _add_pairs(anchor)[:2]
    for comparison in (first, second):
        factories.make_judgment(comparison, p_a=0.9)
    run = factories.make_run(stages=("label",), status=RunStatus.WAITING,
                             config={"judge": {"anchor_run": anchor.pk, "anchor_sample": 2}})
    check = AnchorCheck.objects.create(
        run=run, anchor_run=anchor, source="human", judge_id="openai:judge@http://x/v1",
        anchor_judge_id="openai:judge@http://x/v1", sampled=2, n=2, agree=1, agreement=0.5, low=0.09, high=0.91,
        threshold=0.8, passed=False, disagreeing=[second.pk],
        pairs=[{"comparison": first.pk, "anchor": "A", "now": "A", "p_a": 0.9},
               {"comparison": second.pk, "anchor": "A", "now": "B", "p_a": 0.1}])
    run.stages.update(status=StageStatus.WAITING, message=drift.hold_message(check))
    return run, anchor, check, first, second


def test_run_page_card_links_the_disagreeing_pairs(client, operator):
    run, anchor, check, first, second = _held_run()
    client.force_login(operator)
    page = client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert 'id="drift-guard"' in page and "Holding the run" in page
    assert "agreement 50% [95% CI 9%–91%] on 2 anchor pairs" in page
    assert "Release drift guard" in page
    url = f"{reverse('runs:pairs', args=[anchor.pk])}?comparisons={second.pk}"
    assert f'href="{url}"' in page

    pairs = client.get(url).content.decode()
    assert f'id="judgment-{second.judgments.get().pk}"' in pairs
    assert f'id="judgment-{first.judgments.get().pk}"' not in pairs
    assert 'id="chosen-pairs"' in pairs


def test_release_from_the_run_page_marks_the_check(client, operator, monkeypatch):
    run, *_ = _held_run()
    check = run.anchor_checks.get()
    resumed = []
    monkeypatch.setattr(services, "resume_run", lambda r: resumed.append(r.pk))
    client.force_login(operator)
    response = client.post(reverse("runs:release_gate", args=[run.pk]), follow=True)
    assert "Drift guard released" in response.content.decode()
    check.refresh_from_db()
    run.refresh_from_db()
    assert check.released_at is not None and not check.holds and resumed == [run.pk]
    assert not run.gate_released  # the audit gate, later on, still holds by itself


def test_judges_page_charts_each_judges_agreement(client, operator):
    run, anchor, check, *_ = _held_run()
    AnchorCheck.objects.create(run=anchor, anchor_run=None, source="ai", judge_id="judge:<b>other</b>", n=10,
                               agree=9, agreement=0.9, low=0.6, high=0.98, threshold=0.8, passed=True)
    client.force_login(operator)
    page = client.get(reverse("runs:judges")).content.decode()
    assert 'id="anchor-checks"' in page and "held the run" in page and "passed" in page
    data = client.get(reverse("runs:judges_charts")).json()
    (panel,) = data["panels"]
    traces = {t["name"]: t for t in panel["figure"]["data"]}
    assert set(traces) == {"openai:judge@http://x/v1", "judge:&lt;b&gt;other&lt;/b&gt;"}  # user text escaped
    judged = traces["openai:judge@http://x/v1"]
    assert judged["y"] == [0.5] and judged["error_y"]["arrayminus"] == [pytest.approx(0.41)]
    assert judged["marker"]["symbol"] == ["x"]
    csv = client.get(reverse("runs:judges_csv")).content.decode().splitlines()
    assert len(csv) == 3 and csv[0].startswith("checked_at,judge_id")
