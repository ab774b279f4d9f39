"""A panel of judges where decisions are made: the per-judge figures (verdicts, consistency, agreement with
humans and with the panel) and the judges' agreement (alpha, kappa) on the run page and the Judges page, the
"judges disagree" filter of the pair browser, the audit sample's judges-disagree stratum, each judge's vote in
the preference export, and the launch form naming a panel entry's wrong field. Known answers: the planted
panel of tests/runs/panel_fixtures.py, labelled by humans who side with the "right" judge."""
from __future__ import annotations

import pytest
from django.urls import reverse

from runs import panel
from runs.audit.sampling import draw_audit_sample
from runs.exporting import PreferenceFilters, preference_dataset, preference_rows
from runs.models import AuditItem
from runs.stages import label
from tests import factories
from tests.factories import launch_post_data
from tests.runs.panel_fixtures import HUMAN, make_panel_run, running_panel
from training.panel import member_ids
from training.progress import NullReporter

pytestmark = pytest.mark.django_db


@pytest.fixture
def panel_servers():
    with running_panel() as servers:
        yield servers


@pytest.fixture
def labelled(panel_servers):
    """The four kinds of pair judged by the planted panel (majority), each labelled by a human."""
    run, stage_run, comparisons = make_panel_run(panel_servers)
    label.run(stage_run, NullReporter())
    for kind, comparison in comparisons.items():
        factories.make_label(comparison, HUMAN[kind], external_annotator="annotator:1")
    return run, comparisons


def test_the_per_judge_figures_match_the_planted_biases(labelled):
    run, _ = labelled
    figures = panel.report(run)
    ids = member_ids(run.run_config.judge)
    rows = {r.judge_id: r for r in figures["rows"]}
    first, longer, right, verdict = (rows[i] for i in [*ids, figures["panel_id"]])
    assert [r.role for r in figures["rows"]] == ["judge", "panel judge", "panel judge", "panel"]
    assert first.verdict_cells == [0, 0, 4, 0] and longer.verdict_cells == [2, 2, 0, 0]
    assert verdict.verdict_cells == [1, 1, 2, 0]
    # agreement with humans (a tie is a miss): first 0/4, longer 2/4, right 4/4, the panel's majority 2/4
    assert [r.humans.value for r in (first, longer, right, verdict)] == [0.0, 0.5, 1.0, 0.5]
    assert all(r.humans.n == 4 for r in (first, longer, right, verdict))
    # position consistency: first-shown never, the others always; the panel on AA and BB only
    assert [r.consistency.value for r in (first, longer, right, verdict)] == [0.0, 1.0, 1.0, 0.5]
    assert [r.with_panel.value for r in (first, longer, right)] == [0.5, 0.5, 0.5] and verdict.with_panel is None
    assert figures["alpha"].value == pytest.approx(-7 / 48) and figures["kappa"].value == pytest.approx(-0.25)
    assert (figures["disagree"], figures["decided"], figures["units"], figures["human_pairs"]) == (4, 4, 4, 4)
    assert figures["best_judge"].judge_id == ids[2] and figures["judges"] == 3
    assert first.cost == 0.0


def test_the_run_page_and_the_judges_page_show_the_panel(client, viewer, labelled):
    run, _ = labelled
    client.force_login(viewer)
    page = client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert 'id="judge-panel"' in page and "3 judges ask every pair in both orders" in page
    assert 'data-panel="alpha">-0.146<' in page and 'data-panel="kappa">-0.250<' in page
    assert f'href="/runs/{run.pk}/pairs/?judges=disagree"' in page and "4 of 4</a>" in page
    judges = client.get(reverse("runs:judges")).content.decode()
    assert f'data-run="{run.pk}"' in judges and "-0.146" in judges


def test_a_one_judge_run_has_no_panel_card(client, viewer):
    run = factories.make_run(stages=("label",))
    client.force_login(viewer)
    assert panel.report(run) is None
    assert 'id="judge-panel"' not in client.get(reverse("runs:detail", args=[run.pk])).content.decode()


def test_the_pair_browser_filters_pairs_whose_judges_disagree_and_shows_each_vote(client, viewer, labelled):
    run, comparisons = labelled
    client.force_login(viewer)
    url = reverse("runs:pairs", args=[run.pk])
    response = client.get(url, {"judges": "disagree"})
    assert len(response.context["judgments"]) == 4 and response.context["applied"] == {"judges": "disagree"}
    page = response.content.decode()
    assert 'name="judges"' in page and "Judges' votes:" in page and "judges disagree</span>" in page
    assert f"{member_ids(run.run_config.judge)[2]}: A</span>" in page
    assert len(client.get(url, {"judges": "agree"}).context["judgments"]) == 0
    assert len(client.get(url, {"judges": "bogus"}).context["judgments"]) == 4  # an unknown value filters nothing


def test_the_audit_sample_draws_the_judges_disagree_stratum(labelled):
    run, _ = labelled
    result = draw_audit_sample(run, random_size=1, disagree_size=10, seed=3)
    assert (result.random, result.uncertain, result.disagree) == (1, 0, 3)  # the one drawn at random is not again
    assert sorted(AuditItem.objects.filter(run=run).values_list("stratum", flat=True)) == [
        "disagree", "disagree", "disagree", "random"]
    one_judge = factories.make_run(stages=("label",))
    comparison = factories.make_comparison(one_judge)
    factories.make_judgment(comparison, p_a=0.9)
    assert draw_audit_sample(one_judge, random_size=0, disagree_size=5).disagree == 0


def test_the_dashboard_form_draws_the_stratum(client, auditor, labelled):
    run, _ = labelled
    client.force_login(auditor)
    response = client.post(reverse("runs:audit_sample", args=[run.pk]),
                           {"random_size": 0, "uncertain_size": 0, "disagree_size": 2, "margin": 0.1, "seed": 0})
    assert response.status_code == 302
    assert AuditItem.objects.filter(run=run, stratum="disagree").count() == 2
    page = client.get(reverse("runs:audit_dashboard", args=[run.pk])).content.decode()
    assert 'id="audit-disagree-count">2<' in page


def test_the_export_carries_each_judges_vote(labelled):
    run, comparisons = labelled
    ids = member_ids(run.run_config.judge)
    rows = {r["comparison_id"]: r for r in preference_rows(run, PreferenceFilters(prefer_human_labels=False))}
    aa = rows[comparisons["AA"].pk]
    assert aa["ai_verdict"] == "A" and aa["judge"].startswith("panel:majority:3:")
    assert [(v["judge"], v["verdict"]) for v in aa["judge_votes"]] == [(ids[0], "tie"), (ids[1], "A"), (ids[2], "A")]
    assert aa["judge_votes"][0]["p_a"] == 0.5 and aa["judge_votes"][0]["principle"]
    assert comparisons["AB"].pk not in rows  # the panel's tie decides nothing
    dataset = preference_dataset(run, PreferenceFilters(prefer_human_labels=False))
    assert [v["verdict"] for v in dataset[0]["judge_votes"]] == ["tie", "A", "A"]
    one_judge = factories.make_run(stages=("label",))
    factories.make_judgment(factories.make_comparison(one_judge), p_a=0.9)
    assert preference_rows(one_judge, PreferenceFilters())[0]["judge_votes"] == []


def _launch_form(judge: dict, stages=("generate", "label")):
    from runs.forms import LaunchForm
    from runs.presets import PRESETS

    config = PRESETS["offline-demo"].full_config()
    config["judge"].update(judge)
    data = launch_post_data(config, name="panel", constitution_version=factories.make_version(),
                            prompt_set=factories.make_prompt_set(), stages=list(stages))
    return LaunchForm(data)


def test_the_launch_form_names_the_panel_entrys_wrong_field():
    form = _launch_form({"panel": [{"model": "demo://policy"}, {"backend": "openai", "model": "m"},
                                   {"tie_margin": 0.2}]})
    assert not form.is_valid()
    errors = " ".join(form.errors["judge__panel"])
    assert "judge.panel[1].base_url: is required with the openai backend" in errors
    assert "judge.panel[2].tie_margin: is shared by the panel's judges: set judge.tie_margin instead" in errors
    assert "must be a JSON list" in " ".join(_launch_form({"panel": {"model": "x"}}).errors["judge__panel"])


def test_preflight_checks_each_panel_judges_endpoint(panel_servers):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    entry = {"backend": "openai", "model": "judge", "base_url": f"http://127.0.0.1:{port}/v1"}
    form = _launch_form({"panel": [{"model": "demo://policy"}, entry]})
    assert not form.is_valid()
    assert "judge.panel[1].base_url:" in " ".join(form.errors["judge__panel"])


def test_a_valid_panel_launches_with_its_entries_pinned():
    form = _launch_form({"panel": [{"model": "demo://policy"}], "panel_aggregation": "mean"})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["config"]["judge"]["panel"] == [{"model": "demo://policy"}]
    assert form.cleaned_data["run_config"].judge.panel_aggregation == "mean"
