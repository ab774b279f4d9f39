"""Stopping the app and starting it again: everything is still there, and a run the stop interrupted
resumes where it stopped (embedded queue: the jobs died with the process; the stage rows say what is left)."""
from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from constitutions.starter import STARTER_NAME
from runs.starter import DEMO_SET_NAME
from tests.conftest import REPO_ROOT
from tests.runs.test_studio_command import _free_port, _start, _stop

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PROMPTS = 30  # one prompt a batch: generation lasts long enough to be stopped in the middle


def _query(db: Path, sql: str):
    with sqlite3.connect(db, timeout=30) as conn:
        return conn.execute(sql).fetchall()


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}")


def test_stop_during_a_stage_then_restart_resumes_without_duplicates(tmp_path, demo_models_cache):
    db = tmp_path / "studio.sqlite3"
    data = tmp_path / "data"
    shutil.copytree(demo_models_cache / "demo", data / "models" / "demo")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}", "STUDIO_DATA_DIR": str(data),
           "STUDIO_ADMIN_PASSWORD": "a-long-test-password"}
    env.pop("REDIS_URL", None)
    port = _free_port()

    # First start: migrate + starter data; then a run launched from a script while the app is down.
    proc, _ = _start(env, port)
    _stop(proc)
    launched = subprocess.run(
        [sys.executable, "manage.py", "launch_run", "--preset", "offline-demo", "--name", "resume-me",
         "--constitution", STARTER_NAME, "--prompt-set", DEMO_SET_NAME, "--stages", "generate,label",
         "--set", f"generation.max_prompts={PROMPTS}", "--set", "generation.batch_size=1",
         "--set", "generation.max_new_tokens=48", "--set", "judge.principle_sampling=sample"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert launched.returncode == 0, launched.stderr
    assert "the run starts at the next `manage.py studio` start" in launched.stdout

    # Second start picks the queued run up; stop it while generation is under way.
    proc, out = _start(env, port)
    assert "Resumed 1 interrupted stage(s)" in out
    _wait_for(
        lambda: _query(db, "select progress_done from runs_stagerun where stage='generate' and status='running' "
                           "and progress_done > 0"),
        timeout=120, what="generation to start",
    )
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    [(status, done)] = _query(db, "select status, progress_done from runs_stagerun where stage='generate'")
    assert status == "running" and 0 < done < PROMPTS, (status, done)  # interrupted, not cancelled or failed
    [(log_tail,)] = _query(db, "select log_tail from runs_stagerun where stage='generate'")
    assert "interrupted by shutdown; will resume at next start" in log_tail

    # Third start: the interrupted stage resumes and the run finishes.
    proc, out = _start(env, port)
    try:
        assert "Resumed 1 interrupted stage(s)" in out
        _wait_for(lambda: _query(db, "select 1 from runs_run where name='resume-me' and status in "
                                     "('succeeded','failed')"), timeout=300, what="the run to finish")
    finally:
        _stop(proc)
    assert _query(db, "select status from runs_run where name='resume-me'") == [("succeeded",)]
    assert _query(db, "select count(*), count(distinct prompt_id) from runs_completion") == [(2 * PROMPTS, PROMPTS)]
    samples: dict[int, set[str]] = {}
    for prompt_id, text in _query(db, "select prompt_id, text from runs_completion"):
        samples.setdefault(prompt_id, set()).add(text.strip())
    pairs = sum(len(texts) == 2 for texts in samples.values())  # a pair of identical samples is not compared
    assert pairs > PROMPTS // 2
    assert _query(db, "select count(*) from runs_comparison") == [(pairs,)]
    assert _query(db, "select count(*), count(distinct comparison_id) from runs_judgment") == [(pairs, pairs)]
    assert _query(db, "select attempt from runs_stagerun where stage='generate'") == [(2,)]
    # starter data was not duplicated by the restarts
    assert _query(db, "select count(*) from constitutions_constitution") == [(1,)]
