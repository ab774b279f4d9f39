"""Compare page: config diff, panel CSV, wall-time x values, the more-metrics split."""
import csv
import io
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from runs import charts
from runs.config_diff import config_diff
from runs.models import MetricPoint
from tests import factories
from tests.runs.run_page_data import curve

pytestmark = pytest.mark.django_db


def test_config_diff_lists_only_what_differs_with_defaults_filled():
    version = factories.make_version()
    prompts = factories.make_prompt_set()
    a = factories.make_run(name="a", config={"policy": {"beta": 0.05}}, constitution_version=version,
                           prompt_set=prompts)
    b = factories.make_run(name="b", config={"policy": {"beta": 0.2, "steps": 20}}, constitution_version=version,
                           prompt_set=prompts)
    diff = config_diff([a, b])
    # steps: 20 is the default, so only beta differs
    assert [r["path"] for r in diff["rows"]] == ["policy.beta"]
    assert diff["rows"][0]["cells"] == [{"value": "0.05", "differs": False}, {"value": "0.2", "differs": True}]
    assert diff["same"] > 40


def test_compare_page_shows_the_diff_table(client, viewer):
    a = factories.make_run(name="low beta", config={"policy": {"beta": 0.01}})
    b = factories.make_run(name="high beta", config={"policy": {"beta": 0.3}}, stages=("generate", "label"))
    client.force_login(viewer)
    page = client.get(reverse("runs:compare"), {"runs": f"{a.pk},{b.pk}"}).content.decode()
    assert 'id="config-diff"' in page
    assert 'data-path="policy.beta"' in page and '<td class="differs">0.3</td>' in page
    assert 'data-path="stages"' in page and 'data-path="constitution"' in page  # different pinned versions
    assert 'data-path="judge.model"' not in page


def test_panel_csv_has_every_point_and_neutralises_formulas(client, viewer):
    run = factories.make_run(stages=("policy",), name="=HYPERLINK(1)")
    curve(run, "policy", "kl", [0.0, 0.01, 0.03])
    curve(run, "evaluate", "=cmd", [0.5])
    client.force_login(viewer)
    response = client.get(reverse("runs:charts_csv"), {"runs": str(run.pk), "panel": "policy_kl"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["series"], r["x"], float(r["y"])) for r in rows] == [("kl", "0", 0.0), ("kl", "1", 0.01),
                                                                      ("kl", "2", 0.03)]
    scalars = list(csv.DictReader(io.StringIO(client.get(
        reverse("runs:charts_csv"), {"runs": str(run.pk), "panel": "scalars"}).content.decode())))
    assert scalars[0]["series"] == "evaluate/=cmd"  # not at the cell start: harmless
    assert client.get(reverse("runs:charts_csv"), {"runs": str(run.pk), "panel": "nope"}).status_code == 404


def test_csv_cell_starting_with_a_formula_gets_a_quote(client, viewer):
    run = factories.make_run(stages=("policy",))
    curve(run, "policy", "-x/y", [1.0, 2.0])  # family "-x" under more metrics; series name starts with "-"
    client.force_login(viewer)
    text = client.get(reverse("runs:charts_csv"), {"runs": str(run.pk), "panel": "policy--x"}).content.decode()
    assert "'-x/y" in text


def test_traces_carry_minutes_since_the_first_metric():
    run = factories.make_run(stages=("policy",))
    t0 = timezone.now()
    for step, minutes in ((1, 0), (2, 1.5), (3, 4)):
        MetricPoint.objects.create(run=run, stage="policy", step=step, name="kl", value=0.1 * step,
                                   created_at=t0 + timedelta(minutes=minutes))
    panels = {p["id"]: p for p in charts.chart_data([run.pk])["panels"]}
    (kl,) = panels["policy_kl"]["figure"]["data"]
    assert kl["x"] == [1, 2, 3] and kl["customdata"] == pytest.approx([0, 1.5, 4])
    assert panels["policy_kl"]["x"] == "step"
