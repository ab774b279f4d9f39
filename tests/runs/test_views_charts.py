"""Chart JSON: metric curves aggregated in the database, overlays, judge figures."""
import pytest
from django.urls import reverse

from runs import charts
from tests import factories
from tests.runs.run_page_data import curve, judged_pair

pytestmark = pytest.mark.django_db


def panels_by_id(body):
    return {p["id"]: p for p in body["panels"]}


def traces_by_name(panel):
    return {t.get("name"): t for t in panel["figure"]["data"]}


@pytest.fixture
def run():
    run = factories.make_run(stages=("reward_model", "policy"), name="first")
    curve(run, "reward_model", "loss", [0.7, 0.6, 0.5])
    curve(run, "reward_model", "eval_loss", [0.65, 0.55])
    curve(run, "reward_model", "eval_accuracy", [0.5, 0.75])
    curve(run, "policy", "reward", [0.1, 0.2, 0.4, 0.3])
    curve(run, "policy", "reward_std", [0.05, 0.05, 0.1, 0.1])
    curve(run, "policy", "kl", [0.0, 0.01, 0.03, 0.02])
    curve(run, "policy", "entropy", [2.0, 1.9, 1.8, 1.7])
    curve(run, "policy", "completions/mean_length", [20, 22, 25, 24])
    curve(run, "policy", "clip_ratio/low_mean", [0.0, 0.1, 0.0, 0.0])
    curve(run, "evaluate", "win_rate", [0.62])
    return run


def test_known_metrics_go_to_their_panels_with_their_values(client, viewer, run):
    client.force_login(viewer)
    body = client.get(reverse("runs:charts", args=[run.pk])).json()
    assert body["runs"] == [{"id": run.pk, "name": "first", "color": charts.COLORS[0]}]
    panels = panels_by_id(body)

    loss = traces_by_name(panels["rm_loss"])
    assert loss["loss"]["x"] == [0, 1, 2] and loss["loss"]["y"] == pytest.approx([0.7, 0.6, 0.5])
    assert loss["eval_loss"]["y"] == pytest.approx([0.65, 0.55])
    assert traces_by_name(panels["rm_accuracy"])["eval_accuracy"]["y"] == pytest.approx([0.5, 0.75])

    reward = traces_by_name(panels["policy_reward"])
    assert reward["reward"]["y"] == pytest.approx([0.1, 0.2, 0.4, 0.3])
    band = reward["reward ± std"]
    assert band["y"] == pytest.approx([0.05, 0.15, 0.3, 0.2]) and band["fill"] == "tonexty"
    upper = panels["policy_reward"]["figure"]["data"][0]
    assert upper["y"] == pytest.approx([0.15, 0.25, 0.5, 0.4])
    assert traces_by_name(panels["policy_kl"])["kl"]["y"] == pytest.approx([0.0, 0.01, 0.03, 0.02])
    assert traces_by_name(panels["policy_entropy"])["entropy"]["y"] == pytest.approx([2.0, 1.9, 1.8, 1.7])
    assert traces_by_name(panels["policy_length"])["completions/mean_length"]["y"] == pytest.approx([20, 22, 25, 24])

    scatter = panels["reward_vs_kl"]["figure"]["data"][0]
    assert scatter["x"] == pytest.approx([0.0, 0.01, 0.03, 0.02])
    assert scatter["y"] == pytest.approx([0.1, 0.2, 0.4, 0.3])

    # Unknown names are still plotted, under "more metrics"; reward_std is not plotted on its own;
    # a metric logged once is a table row, not a one-point chart.
    assert panels["policy-clip_ratio"]["group"] == "more"
    assert "evaluate-win_rate" not in panels
    assert body["scalars"] == [{"run": run.pk, "stage": "evaluate", "stage_label": "Evaluate", "name": "win_rate",
                                "step": 0, "value": pytest.approx(0.62)}]
    all_names = {t.get("name") for p in body["panels"] for t in p["figure"]["data"]}
    assert "reward_std" not in all_names


def test_a_single_reward_function_is_not_drawn_twice(client, viewer):
    """TRL logs ``reward`` and ``rewards/<function>/mean``; with one reward function they are the same curve."""
    run = factories.make_run(stages=("policy",))
    curve(run, "policy", "reward", [0.1, 0.2, 0.3])
    curve(run, "policy", "reward_std", [0.05, 0.05, 0.05])
    curve(run, "policy", "rewards/reward_model/mean", [0.1, 0.2, 0.3])
    curve(run, "policy", "rewards/reward_model/std", [0.05, 0.05, 0.05])
    client.force_login(viewer)
    body = client.get(reverse("runs:charts", args=[run.pk])).json()
    names = [t.get("name") for p in body["panels"] for t in p["figure"]["data"]]
    assert "reward" in names and "reward ± std" in names
    assert not [n for n in names if n and n.startswith("rewards/")]


def test_several_reward_functions_are_drawn_each(client, viewer):
    run = factories.make_run(stages=("policy",))
    curve(run, "policy", "reward", [0.3, 0.5])
    curve(run, "policy", "rewards/helpful/mean", [0.1, 0.2])
    curve(run, "policy", "rewards/harmless/mean", [0.2, 0.3])
    client.force_login(viewer)
    reward = traces_by_name(panels_by_id(client.get(reverse("runs:charts", args=[run.pk])).json())["policy_reward"])
    assert reward["rewards/helpful/mean"]["y"] == pytest.approx([0.1, 0.2])
    assert reward["rewards/harmless/mean"]["y"] == pytest.approx([0.2, 0.3])


def test_overlay_of_two_runs(client, viewer, run):
    other = factories.make_run(stages=("policy",), name="second")
    curve(other, "policy", "reward", [0.3, 0.5])
    curve(other, "policy", "kl", [0.1, 0.2])
    client.force_login(viewer)
    body = client.get(reverse("runs:charts", args=[run.pk]), {"compare": str(other.pk)}).json()
    assert [r["id"] for r in body["runs"]] == [run.pk, other.pk]
    reward = traces_by_name(panels_by_id(body)["policy_reward"])
    assert reward[f"#{other.pk} reward"]["y"] == pytest.approx([0.3, 0.5])
    # each run its own colour and legend group (one legend click hides the run); dash styles tell metrics apart
    assert reward[f"#{run.pk} reward"]["line"]["color"] == charts.COLORS[0]
    assert reward[f"#{other.pk} reward"]["line"]["color"] == charts.COLORS[1]
    assert reward[f"#{run.pk} reward"]["legendgroup"] == f"run-{run.pk}"
    assert reward[f"#{other.pk} reward"]["legendgroup"] == f"run-{other.pk}"
    loss = traces_by_name(panels_by_id(body)["rm_loss"])
    assert loss[f"#{run.pk} loss"]["line"]["dash"] != loss[f"#{run.pk} eval_loss"]["line"]["dash"]
    assert len(panels_by_id(body)["reward_vs_kl"]["figure"]["data"]) == 2

    same = client.get(reverse("runs:compare_charts"), {"runs": f"{other.pk},{run.pk}"}).json()
    assert [r["id"] for r in same["runs"]] == [other.pk, run.pk]
    page = client.get(reverse("runs:compare"), {"runs": [run.pk, other.pk]}).content.decode()
    assert "second" in page and f"runs={run.pk},{other.pk}" in page


def test_long_curves_are_averaged_into_buckets_by_the_database(client, viewer, monkeypatch):
    monkeypatch.setattr(charts, "MAX_POINTS", 10)
    run = factories.make_run(stages=("policy",))
    curve(run, "policy", "loss", [float(i) for i in range(100)])  # steps 0..99 -> 10 buckets of 10 steps
    curve(run, "reward_model", "loss", [1.0, 0.5])  # short stage keeps every step
    client.force_login(viewer)
    panels = panels_by_id(client.get(reverse("runs:charts", args=[run.pk])).json())
    loss = traces_by_name(panels["policy_loss"])["loss"]
    assert loss["x"] == pytest.approx([4.5 + 10 * k for k in range(10)])
    assert loss["y"] == pytest.approx([4.5 + 10 * k for k in range(10)])
    assert traces_by_name(panels["rm_loss"])["loss"]["y"] == pytest.approx([1.0, 0.5])


def test_judge_verdicts_consistency_and_latency(client, viewer):
    version = factories.make_version(principles=[factories.principle("Honest"), factories.principle("Helpful")])
    honest, helpful = version.principles.order_by("position")
    run = factories.make_run(constitution_version=version, stages=("label",))
    judged_pair(run, honest, p_a_ab=0.9, p_a_ba=0.8, verdict="A", latency_ms=100)
    judged_pair(run, honest, p_a_ab=0.9, p_a_ba=0.3, verdict="A", latency_ms=200)
    judged_pair(run, honest, p_a_ab=0.1, p_a_ba=0.2, verdict="B", latency_ms=300)
    judged_pair(run, helpful, p_a_ab=0.5, p_a_ba=0.5, verdict="tie", latency_ms=400, consistent=True)
    judged_pair(run, helpful, p_a_ab=None, p_a_ba=None, verdict="", latency_ms=0)
    client.force_login(viewer)
    panels = panels_by_id(client.get(reverse("runs:charts", args=[run.pk])).json())

    verdicts = traces_by_name(panels["judge_verdicts"])
    assert dict(zip(verdicts["A preferred"]["x"], verdicts["A preferred"]["y"], strict=True)) == {"Honest": 2}
    assert dict(zip(verdicts["B preferred"]["x"], verdicts["B preferred"]["y"], strict=True)) == {"Honest": 1}
    assert dict(zip(verdicts["tie"]["x"], verdicts["tie"]["y"], strict=True)) == {"Helpful": 1}
    assert dict(zip(verdicts["failed"]["x"], verdicts["failed"]["y"], strict=True)) == {"Helpful": 1}
    assert panels["judge_verdicts"]["figure"]["layout"]["barmode"] == "stack"

    consistency = panels["judge_consistency"]["figure"]["data"][0]
    shares = dict(zip(consistency["x"], consistency["y"], strict=True))
    assert shares == pytest.approx({"Honest": 2 / 3, "Helpful": 1.0})

    latency = panels["judge_latency"]["figure"]["data"][0]
    assert sum(latency["y"]) == 4  # the failed call without a latency is left out
    assert min(latency["x"]) >= 100 and max(latency["x"]) <= 400


def test_run_without_metrics_has_no_panels(client, viewer):
    run = factories.make_run()
    client.force_login(viewer)
    assert client.get(reverse("runs:charts", args=[run.pk])).json()["panels"] == []
    assert client.get(reverse("runs:charts", args=[run.pk + 99])).status_code == 404


def test_cached_figures_follow_the_stages_progress(client, viewer):
    from django.utils import timezone

    from runs.models import StageRun

    run = factories.make_run(stages=("policy",))
    curve(run, "policy", "kl", [0.1, 0.2])
    client.force_login(viewer)
    url = reverse("runs:charts", args=[run.pk])
    assert traces_by_name(panels_by_id(client.get(url).json())["policy_kl"])["kl"]["y"] == pytest.approx([0.1, 0.2])
    curve(run, "policy", "kl", [0.3], start=2)
    StageRun.objects.filter(run=run).update(progress_done=3, heartbeat_at=timezone.now())  # what a reporter does
    kl = traces_by_name(panels_by_id(client.get(url).json())["policy_kl"])["kl"]
    assert kl["y"] == pytest.approx([0.1, 0.2, 0.3])


def test_cached_judge_figures_follow_the_label_stage(client, viewer):
    from django.utils import timezone

    from runs.models import StageRun

    version = factories.make_version()
    principle = version.principles.first()
    run = factories.make_run(constitution_version=version, stages=("label", "policy"))
    judged_pair(run, principle, p_a_ab=0.9, p_a_ba=0.8, verdict="A")
    client.force_login(viewer)
    url = reverse("runs:charts", args=[run.pk])

    def a_count():
        return sum(traces_by_name(panels_by_id(client.get(url).json())["judge_verdicts"])["A preferred"]["y"])

    assert a_count() == 1
    judged_pair(run, principle, p_a_ab=0.9, p_a_ba=0.7, verdict="A")
    StageRun.objects.filter(run=run, stage="label").update(progress_done=2, heartbeat_at=timezone.now())
    assert a_count() == 2


def test_the_judge_reward_metrics_chart_in_the_policy_panels(client, viewer):
    run = factories.make_run(stages=("policy",), config={"policy": {"reward_source": "judge"}})
    curve(run, "policy", "judge_reward", [0.5, 0.5, 0.5])
    curve(run, "policy", "judge_margin", [0.6, 0.4, 0.3])
    curve(run, "policy", "judge_failed", [0, 2, 1])
    client.force_login(viewer)
    panels = panels_by_id(client.get(reverse("runs:charts", args=[run.pk])).json())
    reward = traces_by_name(panels["policy_reward"])
    assert reward["judge_reward"]["y"] == pytest.approx([0.5, 0.5, 0.5])
    assert reward["judge_margin"]["y"] == pytest.approx([0.6, 0.4, 0.3])
    assert traces_by_name(panels["policy_judge_failed"])["judge_failed"]["y"] == pytest.approx([0, 2, 1])
