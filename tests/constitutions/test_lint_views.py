"""Constitution lint on the version page and in the editor, from runs' judgments (through the provider)."""
from __future__ import annotations

import pytest
from django.urls import reverse

from constitutions import lint as constitution_lint
from runs.lint import version_lint
from tests import factories
from tests.training.test_constitution_lint import planted_rows

pytestmark = pytest.mark.django_db


def make_linted_version(humans: bool = False):
    """A version whose four principles were judged on :func:`planted_rows` by one run: Sound, Copy (Sound's
    duplicate), Noisy (a coin flip) and Tied (mostly ties). ``humans``: each pair also gets the planted human
    label. Returns ``(version, run, principle ids in order)``."""
    version = factories.make_version(principles=[factories.principle(n) for n in ("Sound", "Copy", "Noisy", "Tied")])
    run = factories.make_run(constitution_version=version, prompt_set=factories.make_prompt_set(n=1))
    ids = list(version.principles.order_by("position").values_list("pk", flat=True))
    comparisons = {}
    for row in planted_rows():
        if row.comparison not in comparisons:
            comparisons[row.comparison] = factories.make_comparison(run, texts=(f"a{row.comparison}",
                                                                                 f"b{row.comparison}"))
            if humans:
                factories.make_label(comparisons[row.comparison], row.human, external_annotator="annotator:1")
        factories.make_judgment(comparisons[row.comparison], version.principles.get(pk=ids[row.principle - 1]),
                                p_a=row.p_a, verdict=row.verdict, position_consistent=row.consistent)
    return version, run, ids


@pytest.fixture
def linted_version():
    return make_linted_version()


def test_runs_register_the_lint_provider():
    assert version_lint in constitution_lint.PROVIDERS


def test_version_page_flags_principles_and_links_the_pairs(client, viewer, linted_version):
    version, run, ids = linted_version
    client.force_login(viewer)
    page = client.get(reverse("constitutions:version", args=[version.constitution_id, version.number]))
    html = page.content.decode()
    noisy = next(p for p in page.context["principles"] if p.pk == ids[2])
    assert [f["kind"] for f in noisy.lint["flags"]] == ["noise"]
    assert f"/runs/{run.pk}/pairs/?principle={ids[2]}&amp;consistent=no" in html
    tied = next(p for p in page.context["principles"] if p.pk == ids[3])
    assert "never_decides" in {f["kind"] for f in tied.lint["flags"]}
    assert "duplicates another" in html and "behaves like noise" in html


def test_editor_shows_the_flags_beside_each_principle(client, author, linted_version):
    version, _, _ = linted_version
    client.force_login(author)
    page = client.get(reverse("constitutions:edit", args=[version.constitution_id]))
    forms = {f["name"].value(): f for f in page.context["principle_forms"]}
    assert [f["kind"] for f in forms["Noisy"].lint["flags"]] == ["noise"]
    assert "behaves like noise" in page.content.decode()


def test_flag_links_pass_over_a_newer_run_that_has_not_judged_the_principle(linted_version):
    """Regression: every flag linked to the version's latest run, so launching a new run on the version left
    each link on an empty pair browser until that run had judged the same pairs."""
    version, run, ids = linted_version
    factories.make_run(constitution_version=version, prompt_set=run.prompt_set)  # queued, nothing judged
    flags = version_lint(version)[ids[2]]["flags"]
    assert [f["url"] for f in flags] == [f"/runs/{run.pk}/pairs/?principle={ids[2]}&consistent=no"]


def test_duplicate_flag_names_the_other_principle_and_links_the_pairs_they_agree_on(linted_version):
    """Regression: the flag read "same verdict as principle #<database id>", a number the page shows nowhere."""
    version, run, ids = linted_version
    copy = next(f for f in version_lint(version)[ids[1]]["flags"] if f["kind"] == "duplicate")
    assert copy["other"] == ids[0] and copy["detail"].startswith("same verdict as “Sound” on ")
    verdicts = {}
    for row in planted_rows():
        verdicts.setdefault(row.comparison, {})[row.principle] = row.verdict
    agreeing = sum(v[1] == v[2] and v[1] in "AB" for v in verdicts.values())
    path, query = copy["url"].split("?")
    assert path == f"/runs/{run.pk}/pairs/" and query.startswith("comparisons=")
    linked = [int(c) for c in query.removeprefix("comparisons=").split("%2C")]
    assert len(linked) == agreeing == 80  # the copy gives the same verdict as Sound on every pair
    assert set(linked) == set(run.comparisons.values_list("pk", flat=True))
