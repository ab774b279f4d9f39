"""Browser test of the launch pre-flight: one submit lists every problem of the run on its field, in
seconds, and nothing is launched; a screenshot of the page is kept for review."""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from runs.models import Run
from tests import factories
from tests.browser.conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_every_preflight_problem_shows_on_its_field(page, live_server, operator, tmp_path, monkeypatch):
    monkeypatch.delenv("STUDIO_KEY_BROWSERTEST", raising=False)
    factories.make_version()
    factories.make_prompt_set(n=4, name="four prompts")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    login(page, live_server.url, operator.username)
    page.goto(f"{live_server.url}/runs/launch/?preset=offline-demo")
    page.fill("input[name=generation__model]", str(tmp_path / "no-such-model"))
    page.select_option("select[name=judge__backend]", "openai")
    page.fill("input[name=judge__model]", "judge-model")
    page.fill("input[name=judge__base_url]", f"http://127.0.0.1:{dead}/v1")
    page.fill("input[name=judge__api_key_env]", "STUDIO_KEY_BROWSERTEST")
    page.fill("input[name=reward_model__max_length]", "4096")
    started = time.monotonic()
    page.click("#launch-button")
    page.wait_for_selector("[data-field=generation__model] .error")
    assert time.monotonic() - started < 10
    errors = {field: page.locator(f"[data-field={field}] .error").inner_text()
              for field in ("generation__model", "judge__api_key_env", "reward_model__max_length")}
    assert "does not exist" in errors["generation__model"]
    assert "STUDIO_KEY_BROWSERTEST is not set" in errors["judge__api_key_env"]
    assert "has 512 positions" in errors["reward_model__max_length"]
    summary = page.locator("#launch-problems").inner_text()
    assert "Not launched: 3 problems" in summary and "Max length" in summary
    assert not Run.objects.exists()
    shots = Path(os.environ.get("STUDIO_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "launch-preflight.png"), full_page=True)


def test_the_run_name_follows_the_preset_until_the_user_types_one(page, live_server, operator):
    factories.make_version()
    factories.make_prompt_set(n=4, name="four prompts")
    login(page, live_server.url, operator.username)
    page.goto(f"{live_server.url}/runs/launch/?preset=offline-demo")
    assert page.input_value("input[name=name]").startswith("Offline demo on CPU ")
    page.select_option("select[name=preset]", "gemma-cpu")
    assert page.input_value("input[name=name]").startswith("Gemma 3 270M on CPU ")
    page.fill("input[name=name]", "my own name")
    page.select_option("select[name=preset]", "offline-demo")
    assert page.input_value("input[name=name]") == "my own name"
