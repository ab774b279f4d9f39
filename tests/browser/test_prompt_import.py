"""Importing prompts in the browser: upload, column mapping with preview, background job with a progress
bar, the finished set; and a bad file's clear error."""
from __future__ import annotations

import json

import pytest

from tests import factories
from tests.browser.conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def import_operator(transactional_db, settings, tmp_path):
    from runs.starter import ensure_groups

    settings.DATA_DIR = tmp_path / "data"
    ensure_groups()
    return factories.make_user("imogen", roles=("operators",))


def test_chat_prompts_import_with_preview_and_progress(page, live_server, import_operator, run_worker, tmp_path):
    from runs.models import PromptSet

    rows = [{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"Question {i}?"}]}
            for i in range(40)]
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{"prompt": "x", "oops"\n')

    login(page, live_server.url, import_operator.username)
    page.goto(f"{live_server.url}/prompt-sets/")
    page.click("text=Import prompts")
    page.fill("input[name=name]", "Chat prompts")
    page.set_input_files("input[name=files]", str(path))
    page.click("#upload-next")
    page.wait_for_load_state("load")  # the layout script (a static file under the CSP) has run
    assert page.locator("select[name=layout]").input_value() == "messages"
    assert page.locator("input[name=messages_column]").input_value() == "messages"
    # only the chosen layout's columns are shown
    assert page.locator("input[name=messages_column]").is_visible()
    assert page.locator("input[name=chosen_column]").is_hidden()
    assert page.locator("input[name=vote_columns]").is_hidden()
    assert page.locator("input[name=keep_reference_pairs]").is_hidden()
    page.select_option("select[name=layout]", "hh_rlhf")
    assert page.locator("input[name=keep_reference_pairs]").is_visible()
    assert page.locator("input[name=chosen_column]").is_visible()
    assert page.locator("input[name=messages_column]").is_hidden()
    page.select_option("select[name=layout]", "messages")
    preview = page.locator("#preview").inner_text()
    assert "Question 0?" in preview and "Question 4?" in preview and "system" in preview
    page.fill("input[name=eval_ratio]", "0.25")
    page.click("#start-import")
    page.wait_for_selector("#import-progress")
    assert "Importing" in page.locator("#ps-status").inner_text()
    run_worker()
    page.wait_for_selector("#import-report", timeout=20_000)
    assert "Ready" in page.locator("#ps-status").inner_text()
    report = page.locator("#import-report").inner_text()
    assert "40 prompts" in report
    assert "Question 39?" in page.locator("#prompts").inner_text()
    assert PromptSet.objects.get(name="Chat prompts").prompts.filter(split="eval").exists()

    page.goto(f"{live_server.url}/prompt-sets/import/")
    page.fill("input[name=name]", "Broken")
    page.set_input_files("input[name=files]", str(bad))
    page.click("#upload-next")
    page.wait_for_load_state("load")
    # the preview already reads the broken line: the import is refused on the form, before anything is queued
    assert "bad.jsonl, line 2: not valid JSON" in page.locator("#import-error").inner_text()
    page.click("#start-import")
    page.wait_for_load_state("load")
    assert "bad.jsonl, line 2: not valid JSON" in page.locator("#import-error").inner_text()
    assert not PromptSet.objects.filter(name="Broken").exists()
