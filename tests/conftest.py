"""Shared fixtures: personas, the queue, the shared real-data folder, and the CI rule that a skip fails."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests import factories

#: Fixture modules shared by several test folders.
pytest_plugins = ["tests.feedback_fixtures"]

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
CHROMIUM = "/usr/bin/chromium"
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI=true nothing may skip for a missing service, browser or data file: a skip is a failure."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"Skipped under CI (a skip is a failure there): {reason}"


@pytest.fixture(autouse=True)
def _artifacts_in_tmp(settings, tmp_path):
    """Artifacts of every test go to its own temporary folder."""
    settings.ARTIFACTS_DIR = tmp_path / "artifacts"


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` (real public preference data); skipped where absent (a failure under CI)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture(scope="session")
def demo_models_cache() -> Path:
    """A models folder holding ``demo/{policy,judge}``, built once per checkout by the real builder
    (:func:`training.demo_models.ensure_demo_models`) into ``var/test-cache`` and reused while the builder
    and its data are unchanged. Copy ``<cache>/demo`` into a data directory's ``models/`` to use it."""
    import hashlib

    from training import demo_models, tiny_models

    digest = hashlib.sha1()
    for source in (demo_models.__file__, demo_models.DEMO_DATA, tiny_models.__file__):
        digest.update(Path(source).read_bytes())
    cache = REPO_ROOT / "var" / "test-cache" / f"demo-models-{digest.hexdigest()[:12]}"
    if demo_models.missing_demo_models(cache):
        demo_models.ensure_demo_models(cache)
    return cache


@pytest.fixture
def chromium_path() -> str:
    """Debian's Chromium for Playwright tests; skipped where missing (a failure under CI)."""
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        pytest.skip("Chromium is not installed (apt-get install -y chromium)")
    return CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")


@pytest.fixture
def queue_connection():
    """The job queue's Redis (real or embedded), emptied before and after the test."""
    from rlaif_site.queueing import get_queue

    connection = get_queue().connection
    connection.flushdb()
    yield connection
    connection.flushdb()


@pytest.fixture
def run_worker(queue_connection):
    """Call to process every queued job in this thread (an RQ burst worker), as `studio` would."""
    import django_rq

    from rlaif_site.queueing import queue_names

    def work() -> bool:
        worker = django_rq.get_worker(*queue_names(), worker_class="rq.worker.SimpleWorker")
        return worker.work(burst=True)

    return work


@pytest.fixture
def author(db):
    return factories.make_user("alice", roles=("authors",))


@pytest.fixture
def operator(db):
    return factories.make_user("oscar", roles=("operators",))


@pytest.fixture
def auditor(db):
    return factories.make_user("audrey", roles=("auditors",))


@pytest.fixture
def viewer(db):
    """Logged-in user with no role: may read, may not change anything."""
    return factories.make_user("vic")
