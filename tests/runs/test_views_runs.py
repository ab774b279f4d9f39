"""Run list, launch form, run page, progress JSON and operator actions."""
import json

import pytest
from django.urls import reverse

from runs.models import Artifact, Run, RunStatus, StageRun, StageStatus
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def tx_operator(transactional_db):
    """An operator in tests with transaction=True (their flush also empties the role groups)."""
    from runs.starter import ensure_groups

    ensure_groups()
    return factories.make_user("otto", roles=("operators",))


@pytest.fixture
def version():
    return factories.make_version(principles=[factories.principle("Honest"), factories.principle("Helpful")])


@pytest.fixture
def prompt_set():
    return factories.make_prompt_set(n=10, split_every=5)  # prompts 0 and 5 are eval: 8 train, 2 eval


def launch_data(version, prompt_set, **overrides):
    from runs.presets import PRESETS
    from tests.factories import launch_post_data

    data = launch_post_data(
        PRESETS["offline-demo"].full_config(), name="my run", constitution_version=version, prompt_set=prompt_set,
        stages=["generate", "label"],
    )
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


# --- run list -----------------------------------------------------------------------------------------


def test_run_list_shows_current_stage_progress_and_filters(client, operator):
    running = factories.make_run(owner=operator, name="alpha", stages=("generate", "label"), status=RunStatus.RUNNING,
                                 current_stage="label")
    StageRun.objects.filter(run=running, stage="generate").update(status=StageStatus.SUCCEEDED)
    StageRun.objects.filter(run=running, stage="label").update(status=StageStatus.RUNNING, progress_done=3,
                                                               progress_total=12)
    factories.make_run(name="beta", status=RunStatus.FAILED)
    client.force_login(operator)

    page = client.get(reverse("runs:list")).content.decode()
    assert "alpha" in page and ">beta</a>" in page
    assert "1/2 stages" in page and 'title="3 / 12"' in page and "width: 25%" in page

    running_only = client.get(reverse("runs:list"), {"status": "running"}).content.decode()
    assert "alpha" in running_only and ">beta</a>" not in running_only
    assert ">beta</a>" in client.get(reverse("runs:list"), {"q": "BET"}).content.decode()
    mine = client.get(reverse("runs:list"), {"owner": operator.pk}).content.decode()
    assert "alpha" in mine and ">beta</a>" not in mine


# --- launch ---------------------------------------------------------------------------------------------


def test_launch_page_is_prefilled_from_the_offline_demo_preset(client, operator, version, prompt_set):
    client.force_login(operator)
    response = client.get(reverse("runs:launch"))
    assert response.status_code == 200
    form = response.context["form"]
    assert form.initial["generation__model"] == "demo://policy"
    assert form.initial["judge__model"] == "demo://judge"
    assert form.initial["reward_model__base_model"] == "minilm"
    assert form.initial["policy__algorithm"] == "rloo"
    assert form.initial["generation__max_prompts"] == 200
    presets = json.loads(response.content.decode().split('id="launch-presets" type="application/json">')[1]
                         .split("</script>")[0])
    assert presets["single-gpu"]["values"]["generation__model"] == ""
    assert presets["single-gpu"]["placeholders"]["generation__model"]


def test_single_gpu_preset_requires_the_hub_ids(client, operator, version, prompt_set):
    client.force_login(operator)
    page = client.get(reverse("runs:launch"), {"preset": "single-gpu"}).content.decode()
    assert 'placeholder="Qwen/Qwen2.5-1.5B-Instruct"' in page
    from runs.presets import PRESETS
    from tests.factories import launch_post_data

    data = launch_post_data(PRESETS["single-gpu"].full_config(), name="gpu", constitution_version=version,
                                 prompt_set=prompt_set, stages=["generate"])
    response = client.post(reverse("runs:launch"), data)
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert errors["generation__model"] == ["This field is required."]
    assert errors["judge__model"] == ["This field is required."]
    assert not Run.objects.exists()


def test_launch_creates_the_run_and_enqueues_its_first_stage(client, operator, version, prompt_set, queue_connection):
    client.force_login(operator)
    response = client.post(reverse("runs:launch"), launch_data(version, prompt_set, judge__concurrency=3))
    run = Run.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("runs:detail", args=[run.pk])
    assert run.owner == operator and run.name == "my run"
    assert run.config["judge"]["concurrency"] == 3
    assert run.config["generation"]["model"] == "demo://policy"
    assert run.config["policy"]["steps"] == 30
    assert {s.stage: s.status for s in run.stages.all()} == {"generate": "queued", "label": "pending"}


def test_validation_error_is_attached_to_the_named_field(client, operator, version, prompt_set):
    client.force_login(operator)
    response = client.post(reverse("runs:launch"), launch_data(version, prompt_set, judge__tie_margin="0.7"))
    assert response.status_code == 200
    assert response.context["form"].errors["judge__tie_margin"] == ["must be between 0.0 and 0.5; got 0.7"]
    assert "must be between 0.0 and 0.5; got 0.7" in response.content.decode()
    assert not Run.objects.exists()

    response = client.post(reverse("runs:launch"),
                           launch_data(version, prompt_set, extra_config='{"queues": {"policy": "tpu"}}'))
    assert response.context["form"].errors["extra_config"] == ["queues.policy: must be 'default' or 'gpu'; got 'tpu'"]

    response = client.post(reverse("runs:launch"), launch_data(version, prompt_set, generation__backend="openai"))
    assert response.context["form"].errors["generation__base_url"] == ["is required with the openai backend"]


def test_estimate_action_renders_the_estimate_without_launching(client, operator, version, prompt_set):
    client.force_login(operator)
    data = launch_data(version, prompt_set, action="estimate", judge__principle_sampling="all",
                       judge__self_consistency=3, generation__max_prompts=0)
    response = client.post(reverse("runs:launch"), data)
    est = response.context["estimate"]
    assert (est.prompts, est.comparisons, est.principles_per_comparison) == (8, 8, 2)
    assert est.judge_calls == 8 * 2 * 2 * 3
    assert 'id="estimate-judge-calls">96<' in response.content.decode()
    assert not Run.objects.exists()


def test_estimate_json(client, operator, version, prompt_set):
    client.force_login(operator)
    data = launch_data(version, prompt_set, judge__both_orders="", generation__samples_per_prompt=4,
                       generation__pairing="all", generation__max_prompts=5, judge__price_per_1k_prompt_tokens=1.0,
                       judge__budget=0.01)
    data.pop("judge__both_orders")
    body = client.post(reverse("runs:launch_estimate"), data).json()
    assert body["ok"] is True
    est = body["estimate"]
    assert est["comparisons"] == 5 * 6 and est["judge_calls"] == 30
    assert est["cost"] > 0.01 and est["calls_within_budget"] < 30
    assert any("labeling stops when it is spent" in w for w in est["warnings"])

    bad = client.post(reverse("runs:launch_estimate"), launch_data(version, prompt_set, policy__steps=0)).json()
    assert bad == {"ok": False, "errors": {"policy__steps": ["must be at least 1; got 0"]}}


def test_launch_again_copies_an_earlier_run(client, operator, version, prompt_set):
    run = factories.make_run(constitution_version=version, prompt_set=prompt_set, stages=("generate", "label"),
                             config={"judge": {"concurrency": 5}, "timeouts": {"label": 99}}, name="first")
    client.force_login(operator)
    form = client.get(reverse("runs:launch"), {"from_run": run.pk}).context["form"]
    assert form.initial["judge__concurrency"] == 5
    assert json.loads(form.initial["extra_config"]) == {"timeouts": {"label": 99}}
    assert form.initial["stages"] == ["generate", "label"] and form.initial["name"] == "first (copy)"


# --- permissions ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["viewer", "author", "auditor"])
def test_only_operators_launch_cancel_resume_and_retry(client, request, persona, version, prompt_set):
    user = request.getfixturevalue(persona)
    run = factories.make_run(status=RunStatus.RUNNING)
    client.force_login(user)
    assert client.get(reverse("runs:launch")).status_code == 403
    assert client.post(reverse("runs:launch"), launch_data(version, prompt_set)).status_code == 403
    assert client.post(reverse("runs:launch_estimate"), launch_data(version, prompt_set)).status_code == 403
    assert client.post(reverse("runs:cancel", args=[run.pk])).status_code == 403
    assert client.post(reverse("runs:resume", args=[run.pk])).status_code == 403
    assert client.post(reverse("runs:retry_stage", args=[run.pk, "generate"])).status_code == 403
    assert client.post(reverse("runs:release_gate", args=[run.pk])).status_code == 403
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and not run.cancel_requested
    assert Run.objects.count() == 1
    # Everyone logged in reads the run page, without the operator buttons.
    page = client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert 'id="cancel-form"' not in page and "Launch a run" not in client.get(reverse("runs:list")).content.decode()


def test_actions_need_post_and_a_login(client, operator):
    run = factories.make_run(status=RunStatus.RUNNING)
    assert client.post(reverse("runs:cancel", args=[run.pk])).status_code == 302  # to the login page
    client.force_login(operator)
    assert client.get(reverse("runs:cancel", args=[run.pk])).status_code == 405


# --- run page and progress ---------------------------------------------------------------------------------


def test_run_page_shows_timeline_error_config_version_and_artifacts(client, viewer):
    run = factories.make_run(stages=("generate", "label"), status=RunStatus.FAILED,
                             config={"judge": {"model": "demo://judge"}})
    StageRun.objects.filter(run=run, stage="generate").update(status=StageStatus.SUCCEEDED, progress_done=8,
                                                              progress_total=8)
    StageRun.objects.filter(run=run, stage="label").update(
        status=StageStatus.FAILED, progress_done=2, progress_total=8,
        error="ValueError: judge said <b>nothing</b>\n\nTraceback (most recent call last):\n  File x",
        log_tail="l1\nl2")
    Artifact.objects.create(run=run, kind="dataset", name="prefs", path="/data/run-1/prefs", metrics={"rows": 8})
    client.force_login(viewer)
    page = client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert "ValueError: judge said &lt;b&gt;nothing&lt;/b&gt;" in page and "Traceback (most recent call last)" in page
    assert "width: 100%" in page and "width: 25%" in page and "2 / 8" in page
    assert "&quot;model&quot;: &quot;demo://judge&quot;" in page
    assert str(run.constitution_version) in page
    assert "/data/run-1/prefs" in page
    assert "plotly/plotly.min.js" in page and "runs/run_detail.js" in page


def test_progress_json_reports_each_stage(client, viewer):
    run = factories.make_run(stages=("generate", "label", "reward_model"), status=RunStatus.RUNNING,
                             current_stage="label")
    StageRun.objects.filter(run=run, stage="generate").update(status=StageStatus.SUCCEEDED, progress_done=5,
                                                              progress_total=5)
    StageRun.objects.filter(run=run, stage="label").update(status=StageStatus.RUNNING, progress_done=3,
                                                           progress_total=12, message="labeling")
    client.force_login(viewer)
    body = client.get(reverse("runs:progress", args=[run.pk])).json()
    assert body["status"] == "running" and body["active"] is True and body["can_cancel"] is True
    assert body["can_resume"] is False
    stages = {s["stage"]: s for s in body["stages"]}
    assert [s["stage"] for s in body["stages"]] == ["generate", "label", "reward_model"]
    assert stages["generate"]["fraction"] == 1.0
    assert (stages["label"]["done"], stages["label"]["total"], stages["label"]["fraction"]) == (3, 12, 0.25)
    assert stages["label"]["message"] == "labeling"
    assert stages["reward_model"]["fraction"] is None and stages["reward_model"]["status"] == "pending"
    assert "counts" not in body
    assert client.get(reverse("runs:progress", args=[run.pk + 999])).status_code == 404


def test_progress_json_with_counts(client, viewer, auditor):
    from tests.runs.run_page_data import judged_pair, label

    version = factories.make_version()
    principle = version.principles.first()
    run = factories.make_run(constitution_version=version, stages=("label",))
    comparison, _ = judged_pair(run, principle, p_a_ab=0.9, p_a_ba=0.7, verdict="A", cost=0.25)
    judged_pair(run, principle, p_a_ab=0.9, p_a_ba=0.2, verdict="A", cost=0.5)
    judged_pair(run, principle, p_a_ab=None, p_a_ba=None, verdict="")
    label(comparison, auditor)
    client.force_login(viewer)
    counts = client.get(reverse("runs:progress", args=[run.pk]), {"counts": 1}).json()["counts"]
    assert counts == {"completions": 6, "comparisons": 3, "judgments": 3, "failed": 1, "cost": 0.75,
                      "consistent": 1, "checked": 2, "human_labels": 1}


def test_progress_json_with_counts_lists_artifacts_for_the_live_page(client, viewer):
    from runs.models import Artifact

    run = factories.make_run(stages=("reward_model",))
    Artifact.objects.create(run=run, kind="reward_model", name="reward_model", path="/data/rm",
                            metrics={"eval_accuracy": 0.75})
    client.force_login(viewer)
    state = client.get(reverse("runs:progress", args=[run.pk]), {"counts": 1}).json()
    assert [(a["kind"], a["name"], a["path"], a["metrics"]) for a in state["artifacts"]] == [
        ("Reward model", "reward_model", "/data/rm", {"eval_accuracy": 0.75})
    ]


@pytest.mark.django_db(transaction=True)
def test_cancel_then_resume_then_retry_a_stage(client, tx_operator, queue_connection, version, prompt_set):
    operator = tx_operator
    from runs import services

    run = services.launch_run(name="r", owner=operator, constitution_version=version, prompt_set=prompt_set,
                              config={}, stages=["generate", "label"])
    client.force_login(operator)
    response = client.post(reverse("runs:cancel", args=[run.pk]), follow=True)
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.cancel_requested
    assert "Cancel requested" in response.content.decode()
    assert client.get(reverse("runs:progress", args=[run.pk])).json()["can_resume"] is True

    client.post(reverse("runs:resume", args=[run.pk]))
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and not run.cancel_requested
    assert run.stages.get(stage="generate").status == StageStatus.QUEUED

    # Retry refuses while the run is queued, and works once it stopped.
    response = client.post(reverse("runs:retry_stage", args=[run.pk, "label"]), follow=True)
    assert "cancel it before resuming" in response.content.decode()
    Run.objects.filter(pk=run.pk).update(status=RunStatus.FAILED)
    StageRun.objects.filter(run=run).update(status=StageStatus.SUCCEEDED)
    StageRun.objects.filter(run=run, stage="label").update(status=StageStatus.FAILED)
    client.post(reverse("runs:retry_stage", args=[run.pk, "label"]))
    stages = {s.stage: s.status for s in run.stages.all()}
    assert stages == {"generate": StageStatus.SUCCEEDED, "label": StageStatus.QUEUED}


@pytest.mark.django_db(transaction=True)
def test_release_gate_button_lets_a_waiting_run_go_on(client, tx_operator, queue_connection, version, prompt_set):
    operator = tx_operator
    run = factories.make_run(constitution_version=version, prompt_set=prompt_set, stages=("reward_model",),
                             status=RunStatus.WAITING, config={"audit_gate": {"min_n": 10, "min_alignment": 0.0}})
    StageRun.objects.filter(run=run).update(status=StageStatus.WAITING, message="waiting for 10 audit labels")
    client.force_login(operator)
    page = client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert 'id="release-form"' in page and "waiting for 10 audit labels" in page
    client.post(reverse("runs:release_gate", args=[run.pk]))
    run.refresh_from_db()
    assert run.gate_released and run.stages.get().status == StageStatus.QUEUED


def test_run_page_shows_the_evaluation_summary(client, viewer):
    from runs.models import MetricPoint

    run = factories.make_run(stages=("evaluate",))
    for name, value in {"win_rate": 0.625, "win_rate_low": 0.4, "win_rate_high": 0.8, "wins": 5, "ties": 0,
                        "losses": 3, "reward_reference_mean": -0.1, "reward_tuned_mean": 0.25}.items():
        MetricPoint.objects.create(run=run, stage="evaluate", step=0, name=name, value=value)
    client.force_login(viewer)
    html = client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert "62%" in html and "95% CI 40%–80%" in html
    assert "5 / 0 / 3" in html and "-0.100 → 0.250" in html
    # evaluated before the length-controlled win rate was stored: said so, not a blank
    assert '<b data-eval="lc_win_rate">—</b>' in html and "not computed" in html


@pytest.mark.parametrize("name", ["SECRET_KEY", "DATABASE_URL", "HOME"])
def test_launch_refuses_an_api_key_variable_the_deployment_does_not_allow(client, operator, version, prompt_set,
                                                                          queue_connection, name):
    client.force_login(operator)
    data = launch_data(version, prompt_set, judge__backend="openai", judge__base_url="http://127.0.0.1:9/v1",
                       judge__model="m", judge__api_key_env=name)
    response = client.post(reverse("runs:launch"), data)
    assert response.status_code == 200 and not Run.objects.exists()
    errors = " ".join(str(e) for e in response.context["form"].errors.values())
    assert name in errors and "STUDIO_KEY_" in errors
