"""Playwright fixtures driving Debian's Chromium.

* ``page`` + ``live_server``: the test process serves the site in a thread (pytest-django); data is seeded
  through the ORM as in any test. Use :func:`login` first.
* ``studio``: a real ``manage.py studio`` subprocess (web server + worker) on a fresh SQLite database,
  for tests that need jobs to run; log in as ``admin`` / :data:`ADMIN_PASSWORD`.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

# Playwright's sync API runs an event loop in this thread; the ORM calls tests make around it are safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ADMIN_PASSWORD = "browser-test-password-1"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="session")
def _playwright():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        yield p


@pytest.fixture
def browser(_playwright, chromium_path):
    browser = _playwright.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def login(page, base_url: str, username: str, password: str = "pw-for-tests-123") -> None:
    """Log in through the login form (users from tests.factories have the default password)."""
    page.goto(f"{base_url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url)


@dataclass
class Studio:
    url: str
    process: subprocess.Popen
    env: dict
    output: list


@pytest.fixture
def studio(tmp_path, chromium_path):
    """A running `manage.py studio` on a fresh SQLite database and data directory."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'studio.sqlite3'}",
        "STUDIO_DATA_DIR": str(tmp_path / "data"),
        "STUDIO_ADMIN_PASSWORD": ADMIN_PASSWORD,
    }
    env.pop("REDIS_URL", None)  # its own embedded queue: nothing shared with the test process
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "studio", "--port", str(port)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    output: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        output.append(line)
        if "RLAIF Studio on" in line:
            break
    else:
        proc.kill()
        pytest.fail("studio did not start:\n" + "".join(output))
    # keep draining its output so the pipe never blocks the server
    import threading

    threading.Thread(target=lambda: output.extend(iter(proc.stdout.readline, "")), daemon=True).start()
    yield Studio(url=f"http://127.0.0.1:{port}", process=proc, env=env, output=output)
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()


def install_demo_models(studio: Studio, cache: Path) -> None:
    """Copy the cached demo models into ``studio``'s data directory, where a first demo run would have built
    them (saves the build in tests that are not about it)."""
    shutil.copytree(cache / "demo", Path(studio.env["STUDIO_DATA_DIR"]) / "models" / "demo", dirs_exist_ok=True)
