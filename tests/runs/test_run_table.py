"""The run list as an experiment table (runs/summary.py): final metrics and hyper-parameters as sortable
columns, tags and notes, filter by tag."""
import re

import pytest
from django.urls import reverse

from runs.models import Artifact, MetricPoint, RunTag
from runs.run_notes import parse_tags
from runs.summary import sort_runs, with_summary
from tests import factories

pytestmark = pytest.mark.django_db


def _finished(name, win_rate, kl, beta, acc=None, human=None):
    run = factories.make_run(name=name, config={"policy": {"algorithm": "rloo", "beta": beta}},
                             stages=("policy", "evaluate"))
    for key, value in {"win_rate": win_rate, "win_rate_low": win_rate - 0.1, "win_rate_high": win_rate + 0.1,
                       "reward_reference_mean": 0.1, "reward_tuned_mean": 0.4}.items():
        MetricPoint.objects.create(run=run, stage="evaluate", step=0, name=key, value=value)
    for step, value in ((1, 0.01), (2, kl)):  # the final KL is the last step's
        MetricPoint.objects.create(run=run, stage="policy", step=step, name="kl", value=value)
    if acc is not None:
        Artifact.objects.create(run=run, kind="reward_model", name="reward_model", path="/x",
                                metrics={"eval_accuracy": acc, "human_accuracy": human})
    return run


def test_summary_annotates_final_metrics_and_params():
    run = _finished("a", 0.62, 0.2, 0.05, acc=0.75, human=0.5)
    comparison = factories.make_comparison(run)
    factories.make_judgment(comparison, position_consistent=True)
    factories.make_judgment(comparison, position_consistent=False, judge_id="other")
    row = with_summary(type(run).objects.filter(pk=run.pk)).get()
    assert row.win_rate == pytest.approx(0.62)
    assert row.win_rate_low == pytest.approx(0.52)
    assert row.final_kl == pytest.approx(0.2)
    assert (row.reward_before, row.reward_after) == (pytest.approx(0.1), pytest.approx(0.4))
    assert (row.rm_acc_ai, row.rm_acc_human) == (pytest.approx(0.75), pytest.approx(0.5))
    assert (row.consistent, row.checked, row.consistency) == (1, 2, pytest.approx(0.5))
    assert row.p_algorithm == "rloo" and row.p_beta == pytest.approx(0.05)


def test_sort_by_metric_puts_missing_values_last_both_ways():
    low = _finished("low", 0.4, 0.5, 0.1)
    high = _finished("high", 0.8, 0.1, 0.01)
    empty = factories.make_run(name="empty")
    qs = with_summary(type(low).objects.all())
    assert [r.name for r in sort_runs(qs, "-win_rate")] == ["high", "low", "empty"]
    assert [r.name for r in sort_runs(qs, "win_rate")] == ["low", "high", "empty"]
    assert [r.name for r in sort_runs(qs, "p_beta")] == ["high", "low", "empty"]
    assert [r.pk for r in sort_runs(qs, "bogus")] == [empty.pk, high.pk, low.pk]


def test_run_list_shows_metric_columns_sorts_and_filters_by_tag(client, operator):
    low = _finished("low run", 0.4, 0.5, 0.1, acc=0.7, human=0.6)
    high = _finished("high run", 0.8, 0.1, 0.01)
    RunTag.objects.create(name="sweep").runs.add(low)
    client.force_login(operator)

    page = client.get(reverse("runs:list"), {"sort": "-win_rate"}).content.decode()
    assert page.index("high run") < page.index("low run")
    assert "80.0%" in page and "70.0%–90.0%" in page and "70.0%" in page  # win rate, its interval, RM accuracy
    assert re.search(r'data-column="final_kl" class="num">0.5<', page)
    page = client.get(reverse("runs:list"), {"sort": "win_rate"}).content.decode()
    assert page.index("low run") < page.index("high run")

    tagged = client.get(reverse("runs:list"), {"tag": "sweep"}).content.decode()
    assert "low run" in tagged and "high run" not in tagged
    assert high.pk


def test_run_list_shows_and_sorts_by_the_length_controlled_win_rate(client, viewer):
    """Beside the raw win rate, the evaluate stage's length-controlled one (Dubois et al. 2024) with its bootstrap
    interval: a run that wins by writing more ranks lower on it."""
    verbose = _finished("verbose run", 0.8, 0.1, 0.01)
    concise = _finished("concise run", 0.7, 0.1, 0.01)
    for run, lc in ((verbose, 0.55), (concise, 0.68)):
        for key, value in {"lc_win_rate": lc, "lc_win_rate_low": lc - 0.07, "lc_win_rate_high": lc + 0.06}.items():
            MetricPoint.objects.create(run=run, stage="evaluate", step=0, name=key, value=value)
    older = _finished("older run", 0.6, 0.1, 0.01)  # evaluated before the figure existed
    row = with_summary(type(verbose).objects.filter(pk=verbose.pk)).get()
    assert (row.lc_win_rate, row.lc_win_rate_low, row.lc_win_rate_high) == (
        pytest.approx(0.55), pytest.approx(0.48), pytest.approx(0.61))
    qs = with_summary(type(verbose).objects.all())
    assert [r.name for r in sort_runs(qs, "-lc_win_rate")] == ["concise run", "verbose run", "older run"]

    client.force_login(viewer)
    page = client.get(reverse("runs:list"), {"sort": "-lc_win_rate"}).content.decode()
    assert 'data-column="lc_win_rate"' in page and "LC win rate" in page
    assert page.index("concise run") < page.index("verbose run") < page.index("older run")
    cell = re.search(r'<td data-column="lc_win_rate" class="num">(.*?)</td>', page.split("verbose run")[1]).group(1)
    assert cell == '55.0%<div class="muted small">48.0%–61.0%</div>'
    assert older.pk


def test_operator_sets_tags_and_note_viewer_cannot(client, operator, viewer):
    run = factories.make_run(name="noted")
    url = reverse("runs:notes", args=[run.pk])
    client.force_login(viewer)
    assert client.post(url, {"tags": "x", "note": "n"}).status_code == 403
    client.force_login(operator)
    client.post(url, {"tags": "Baseline, beta-sweep baseline", "note": "tried β=0.1"})
    run.refresh_from_db()
    assert sorted(t.name for t in run.tags.all()) == ["baseline", "beta-sweep"]
    assert run.note == "tried β=0.1"
    page = client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert "tried β=0.1" in page and ">beta-sweep</a>" in page
    # replacing the tags drops the ones no run uses
    client.post(url, {"tags": "final", "note": ""})
    assert list(RunTag.objects.values_list("name", flat=True)) == ["final"]


def test_bad_tag_is_refused_with_its_name():
    with pytest.raises(Exception, match="'no/slash'"):
        parse_tags("ok, no/slash")


def test_values_that_are_not_numbers_do_not_break_the_table(client, viewer):
    """An external run's artifact or an old config may hold text where a number is expected."""
    odd = factories.make_run(name="odd", config={"policy": {"beta": "high"}})
    Artifact.objects.create(run=odd, kind="reward_model", name="reward_model", path="/x",
                            metrics={"eval_accuracy": "n/a", "human_accuracy": None})
    _finished("normal", 0.5, 0.1, 0.05, acc=0.8, human=0.7)
    client.force_login(viewer)
    for sort in ("-rm_acc_ai", "p_beta", "-p_beta", "rm_acc_human"):
        page = client.get(reverse("runs:list"), {"sort": sort})
        assert page.status_code == 200
        assert ">odd</a>" in page.content.decode() and ">normal</a>" in page.content.decode()
    page = client.get(reverse("runs:list")).content.decode()
    assert re.search(r'data-column="rm_acc_ai" class="num">n/a<', page)
    assert re.search(r'data-column="p_beta" class="num">high<', page)
