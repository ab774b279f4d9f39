"""User text in sinks that are not escaped HTML: plotly labels, CSV cells, and bidi controls in names."""
from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from rlaif_site.untrusted import bidi_control_error, csv_cell, plotly_safe, strip_bidi_controls
from runs.models import AuditItem
from tests import factories

LINK = '<a href="https://evil.example/">click</a>'


def test_plotly_safe_escapes_every_string_and_keeps_numbers():
    figure = {"data": [{"type": "bar", "x": [LINK, "ok"], "y": [1, 2.5], "name": "<b>bold</b>",
                        "hovertext": ["a & b"], "showlegend": False}],
              "layout": {"title": {"text": "admin\u202egnp.exe"}}}
    safe = plotly_safe(figure)
    assert safe["data"][0]["x"][0] == '&lt;a href="https://evil.example/"&gt;click&lt;/a&gt;'
    assert safe["data"][0]["name"] == "&lt;b&gt;bold&lt;/b&gt;" and safe["data"][0]["hovertext"] == ["a &amp; b"]
    assert safe["data"][0]["y"] == [1, 2.5] and safe["data"][0]["showlegend"] is False
    assert safe["layout"]["title"]["text"] == "admingnp.exe"


@pytest.mark.parametrize("cell", ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_formula_cells_are_neutralised(cell):
    assert csv_cell(cell) == "'" + cell


def test_plain_cells_pass_through():
    assert csv_cell("Paris") == "Paris" and csv_cell(0.5) == 0.5 and csv_cell(None) is None


def test_bidi_controls_are_named_and_stripped():
    assert "U+202E" in bidi_control_error("admin\u202egnp.exe")
    assert bidi_control_error("Honest") is None
    assert strip_bidi_controls("a\u2066b\u2069c\u200f") == "abc"


@pytest.mark.django_db
def test_audit_chart_labels_are_not_html(client, viewer):
    version = factories.make_version(principles=[factories.principle(LINK)])
    run = factories.make_run(constitution_version=version, prompt_set=factories.make_prompt_set(n=1))
    principle = version.principles.get()
    comparison = factories.make_comparison(run)
    judgment = factories.make_judgment(comparison, principle, p_a=0.9)
    AuditItem.objects.create(run=run, comparison=comparison, judgment=judgment, stratum="random")
    factories.make_label(comparison, "A", auditor=factories.make_user(roles=("auditors",)))
    client.force_login(viewer)
    figures = client.get(reverse("runs:audit_dashboard", args=[run.pk])).context["figures"]
    labels = figures["chart-principles"]["data"][0]["x"]
    assert labels and all("<a" not in label for label in labels)
    assert any("&lt;a href" in label for label in labels)


@pytest.mark.django_db
def test_run_chart_panels_are_not_html(client, viewer):
    version = factories.make_version(principles=[factories.principle(LINK)])
    run = factories.make_run(constitution_version=version, prompt_set=factories.make_prompt_set(n=1),
                             name=LINK)
    factories.make_judgment(factories.make_comparison(run), version.principles.get(), p_a=0.9)
    client.force_login(viewer)
    body = client.get(reverse("runs:charts", args=[run.pk])).json()
    text = repr(body["panels"])
    assert "<a href" not in text and "&lt;a href" in text


@pytest.mark.django_db
def test_disagreement_csv_cells_cannot_run_formulas(client, viewer):
    version = factories.make_version(principles=[factories.principle("=cmd|' /C calc'!A0")])
    run = factories.make_run(constitution_version=version, prompt_set=factories.make_prompt_set(n=1))
    comparison = factories.make_comparison(run)
    judgment = factories.make_judgment(comparison, version.principles.get(), p_a=0.9, rationale="@SUM(1+1)")
    AuditItem.objects.create(run=run, comparison=comparison, judgment=judgment, stratum="random")
    factories.make_label(comparison, "B", auditor=factories.make_user(roles=("auditors",)))
    client.force_login(viewer)
    body = client.get(reverse("runs:audit_disagreements", args=[run.pk]) + "?format=csv").content.decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert rows and rows[0]["principle"] == "'=cmd|' /C calc'!A0" and rows[0]["rationale"] == "'@SUM(1+1)"


@pytest.mark.django_db
def test_names_with_direction_overrides_are_refused(client, operator, author):
    from constitutions.validation import principle_errors
    from runs.prompt_forms import UploadForm

    assert "U+202E" in principle_errors({"name": "Safe\u202eefas", "comparison": "Which?"})["name"]
    form = UploadForm(data={"name": "set\u202eevil", "layout": "auto"})
    assert not form.is_valid() and "U+202E" in str(form.errors["name"])
