"""The run workbench in the browser, under the site's Content-Security-Policy: the run table (tags, a note,
sorting by a metric, filtering by tag), the compare page (config diff, a colour per run, chart controls,
PNG and CSV of a panel), the sample table across steps and an artifact download.

Screenshots of each page go to ``STUDIO_SCREENSHOT_DIR`` when set (to look at them), else to the test's
temporary folder.
"""
from __future__ import annotations

import csv
import io
import json
import os
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from runs.models import Artifact, MetricPoint
from tests import factories
from tests.browser.conftest import login
from tests.browser.waiting import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("STUDIO_SCREENSHOT_DIR") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def csp_errors(page):
    """Console messages about blocked scripts, styles or handlers (none may appear)."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    return errors


@pytest.fixture
def tx_operator(transactional_db):
    from runs.starter import ensure_groups

    ensure_groups()
    return factories.make_user("otto", roles=("operators",))


def finished_run(name, *, win_rate, beta, kl_values, version=None, prompt_set=None):
    run = factories.make_run(name=name, status="succeeded", stages=("policy", "evaluate"),
                             config={"policy": {"algorithm": "rloo", "beta": beta}},
                             constitution_version=version, prompt_set=prompt_set)
    for key, value in {"win_rate": win_rate, "win_rate_low": win_rate - 0.12, "win_rate_high": win_rate + 0.1,
                       "lc_win_rate": win_rate - 0.1, "lc_win_rate_low": win_rate - 0.2,
                       "lc_win_rate_high": win_rate,
                       "reward_reference_mean": 0.1, "reward_tuned_mean": 0.1 + win_rate}.items():
        MetricPoint.objects.create(run=run, stage="evaluate", step=0, name=key, value=value)
    t0 = timezone.now() - timedelta(minutes=30)
    for step, kl in enumerate(kl_values, start=1):
        for metric, value in (("kl", kl), ("reward", 0.1 * step + win_rate), ("loss", 1.0 / step)):
            MetricPoint.objects.create(run=run, stage="policy", step=step, name=metric, value=value,
                                       created_at=t0 + timedelta(seconds=20 * step))
    return run


def test_run_table_tags_note_sorting_and_tag_filter(page, live_server, tx_operator, shots, csp_errors):
    version, prompts = factories.make_version(), factories.make_prompt_set()
    low = finished_run("beta 0.2", win_rate=0.45, beta=0.2, kl_values=[0.01, 0.02], version=version,
                       prompt_set=prompts)
    high = finished_run("beta 0.05", win_rate=0.71, beta=0.05, kl_values=[0.02, 0.09], version=version,
                        prompt_set=prompts)
    factories.make_run(name="still queued", constitution_version=version, prompt_set=prompts)
    login(page, live_server.url, tx_operator.username)

    # tag two runs and leave a note, from their pages
    for run, tags in ((low, "sweep, baseline"), (high, "sweep")):
        page.goto(f"{live_server.url}/runs/{run.pk}/")
        page.click("#notes-editor summary")
        page.fill("#id_tags", tags)
        if run is high:
            page.fill("#id_note", "lower β: more KL, better win rate")
            page.screenshot(path=str(shots / "run-page-notes.png"))
        page.click(".notes-form button[type=submit]")
        page.wait_for_selector("#run-tags a.tag")
    assert page.locator("#run-note").inner_text() == "lower β: more KL, better win rate"
    assert page.locator("#run-tags a.tag").all_inner_texts() == ["sweep"]

    page.goto(f"{live_server.url}/")
    names = lambda: page.locator("#run-table tbody td.run-name > a:first-child").all_inner_texts()  # noqa: E731
    page.click('#run-table th[data-column="win_rate"] a')
    page.wait_for_url("**sort=-win_rate**")
    assert names() == ["beta 0.05", "beta 0.2", "still queued"]  # best first, runs without a value last
    row = page.locator(f'#run-table tr[data-run="{high.pk}"]')
    assert row.locator('td[data-column="win_rate"]').inner_text().split("\n") == ["71.0%", "59.0%–81.0%"]
    assert row.locator('td[data-column="lc_win_rate"]').inner_text().split("\n") == ["61.0%", "51.0%–71.0%"]
    assert row.locator('td[data-column="final_kl"]').inner_text() == "0.09"
    assert row.locator('td[data-column="p_beta"]').inner_text() == "0.05"
    assert "lower β" in row.locator(".note").inner_text()
    page.screenshot(path=str(shots / "run-table.png"), full_page=True)
    page.click('#run-table th[data-column="win_rate"] a')  # again: ascending
    page.wait_for_url("**sort=win_rate**")
    assert names() == ["beta 0.2", "beta 0.05", "still queued"]

    page.click(f'#run-table tr[data-run="{low.pk}"] a.tag:text-is("baseline")')
    page.wait_for_url("**tag=baseline**")
    assert names() == ["beta 0.2"]
    page.select_option("select[name=tag]", "sweep")
    page.click("form.toolbar button[type=submit]")
    page.wait_for_url("**tag=sweep**")
    assert sorted(names()) == ["beta 0.05", "beta 0.2"]
    assert csp_errors == []


def test_run_page_evaluation_card_fills_in_live_as_the_server_renders_it(page, live_server, viewer, csp_errors):
    """The Evaluation card appears without a reload when the evaluate stage has stored its figures (the page's
    script, ``renderEvaluation``), the length-controlled win rate beside the raw one, in the very text the server
    renders on a reload (62.5% is "62%" both ways: the script rounds an exact half to even, as Python does)."""
    from runs.models import StageRun

    run = factories.make_run(name="evaluating", status="running", stages=("evaluate",))
    StageRun.objects.filter(run=run).update(status="running")
    login(page, live_server.url, viewer.username)
    page.goto(f"{live_server.url}/runs/{run.pk}/")
    assert page.locator("#evaluation-section").is_hidden()

    figures = {"win_rate": 0.625, "win_rate_low": 0.515, "win_rate_high": 0.72, "wins": 60, "ties": 5,
               "losses": 35, "lc_win_rate": 0.505, "lc_win_rate_low": 0.385, "lc_win_rate_high": 0.615}
    for key, value in figures.items():
        MetricPoint.objects.create(run=run, stage="evaluate", step=0, name=key, value=value)
    StageRun.objects.filter(run=run).update(status="succeeded", progress_done=1, progress_total=1)
    type(run).objects.filter(pk=run.pk).update(status="succeeded")
    wait_until(page, "!document.getElementById('evaluation-section').hidden", timeout_s=20)
    live = page.locator("#evaluation").inner_text()
    assert page.locator('[data-eval="lc_win_rate"]').inner_text() == "50%"
    assert page.locator('[data-eval="lc_interval"]').inner_text() == "95% CI 38%–62%"
    assert page.locator('[data-eval="win_rate"]').inner_text() == "62%"
    page.reload()
    assert page.locator("#evaluation").inner_text() == live
    assert csp_errors == []


def test_compare_shows_the_config_diff_and_drives_the_charts(page, live_server, viewer, shots, csp_errors):
    version, prompts = factories.make_version(), factories.make_prompt_set()
    a = finished_run("beta 0.2", win_rate=0.45, beta=0.2, kl_values=[0.01, 0.02, 0.03, 0.05], version=version,
                     prompt_set=prompts)
    b = finished_run("beta 0.05", win_rate=0.71, beta=0.05, kl_values=[0.02, 0.09, 0.2, 0.4], version=version,
                     prompt_set=prompts)
    login(page, live_server.url, viewer.username)
    page.goto(f"{live_server.url}/")
    page.check(f'input[name=runs][value="{a.pk}"]')
    page.check(f'input[name=runs][value="{b.pk}"]')
    page.click("text=Compare selected runs")
    page.wait_for_selector("#chart-policy_kl .main-svg")

    # only what differs: β, nothing else (same constitution, prompts, stages and defaults)
    assert page.locator("#config-diff tbody tr").evaluate_all("rows => rows.map(r => r.dataset.path)") == [
        "policy.beta"]
    assert page.locator("#config-diff td.differs").inner_text() == "0.2"  # newest run (b) first
    # one colour per run, in the key and on the curves
    assert page.locator("#run-colours .run-chip").count() == 2
    colours = page.evaluate("""() => document.getElementById('chart-policy_kl').data
        .map(t => t.line.color)""")
    assert len(set(colours)) == 2

    kl = "document.getElementById('chart-policy_kl')"
    page.check("#chart-controls input[name=log]")
    wait_until(page, f"{kl}.layout.yaxis.type === 'log'")
    page.check('#chart-controls input[name=x][value=time]')
    wait_until(page, f"{kl}.layout.xaxis.title.text.startsWith('minutes')")
    assert page.evaluate(f"{kl}.data[0].x") == pytest.approx([0, 1 / 3, 2 / 3, 1], abs=0.01)  # 20 s apart
    page.locator("#chart-controls input[name=smooth]").fill("0.9")
    wait_until(page, f"{kl}.data[1].y[3] < 0.4")  # smoothed below the raw last value
    # a legend click hides a whole run
    page.locator("#chart-policy_loss .legendtoggle").first.click()
    wait_until(page, "document.getElementById('chart-policy_loss').data.some(t => t.visible === 'legendonly')")
    page.screenshot(path=str(shots / "compare.png"), full_page=True)

    # the evaluate figures are a table row per metric, not one-point charts
    page.click("#more-charts summary")
    assert page.locator("#scalars-table tbody tr").count() == 8  # win rate and LC win rate with bounds, rewards
    assert "lc_win_rate" in page.locator("#scalars-table tbody").inner_text()
    assert page.locator("#charts-more .js-plotly-plot").count() == 0

    with page.expect_download() as png:
        page.click("#box-policy_kl [data-role=png]")
    assert png.value.suggested_filename == "chart-policy_kl.png"
    assert png.value.path().read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with page.expect_download() as download:
        page.click("#box-policy_kl [data-role=csv]")
    rows = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
    assert len(rows) == 8 and {r["run"] for r in rows} == {str(a.pk), str(b.pk)}
    assert csp_errors == []


def test_sample_table_and_artifact_download(page, live_server, viewer, shots, csp_errors, settings):
    run = finished_run("sampled", win_rate=0.6, beta=0.1, kl_values=[0.01, 0.02])
    policy_dir = run.artifacts_dir / "policy"
    model = policy_dir / "model"
    model.mkdir(parents=True)
    (model / "config.json").write_text('{"n_layer": 2}')
    (model / "model.safetensors").write_bytes(b"\0" * 4096)
    Artifact.objects.create(run=run, kind="policy", name="policy", path=str(model),
                            metrics={"reference": "demo://policy", "config": {"algorithm": "rloo"}, "steps": 20})
    samples = policy_dir / "samples.jsonl"
    prompts = ["How do I boil an egg?", "Tell me a joke about cats."]
    answers = {0: ["Boil it.", "Cats."], 10: ["Put the egg in boiling water.", "Why did the cat sit?"],
               20: ["Put the egg in boiling water for nine minutes, then cool it.", "A cat walks into a bar…"]}
    samples.write_text("".join(json.dumps({"step": step, "when": when, "samples": [
        {"prompt": p, "response": r} for p, r in zip(prompts, answers[step], strict=True)]}) + "\n"
        for step, when in ((0, "start"), (10, "checkpoint"), (20, "end"))))
    Artifact.objects.create(run=run, kind="report", name="policy_samples", path=str(samples))
    login(page, live_server.url, viewer.username)
    page.goto(f"{live_server.url}/runs/{run.pk}/")

    policy_row = page.locator("#artifact-table tr", has_text="Tuned policy")
    assert "started from demo://policy" in policy_row.locator(".lineage").inner_text()
    with page.expect_download() as download:
        policy_row.locator("text=Download .zip").click()
    assert download.value.suggested_filename == f"run-{run.key}-policy-policy.zip"
    archive = zipfile.ZipFile(download.value.path())
    assert sorted(archive.namelist()) == ["model/config.json", "model/model.safetensors"]
    page.screenshot(path=str(shots / "run-page-artifacts.png"), full_page=True)

    page.click("#samples-link")
    page.wait_for_selector("#sample-table")
    headers = page.locator("#sample-table thead th").all_text_contents()  # (shown upper-case by the CSS)
    assert headers == ["Prompt", "Start (step 0)", "Step 10", "End (step 20)"]
    first = page.locator("#sample-table tbody tr").first
    assert first.locator("td.prompt").inner_text() == "How do I boil an egg?"
    assert first.locator("td:not(.prompt)").all_inner_texts() == answers_for(answers, 0)
    page.screenshot(path=str(shots / "samples.png"), full_page=True)
    assert csp_errors == []


def answers_for(answers: dict, index: int) -> list[str]:
    return [answers[step][index] for step in sorted(answers)]


def test_forbidden_page_in_the_site_layout(page, live_server, viewer, shots):
    login(page, live_server.url, viewer.username)
    page.goto(f"{live_server.url}/runs/launch/")
    assert "This page needs the 'operators' role." in page.locator("#forbidden").inner_text()
    assert page.locator("header.topbar nav").count() == 1
    page.screenshot(path=str(shots / "forbidden.png"), full_page=True)
