"""SIGKILL of a worker during a stage: the stage is found lost and re-queued, the run finishes, and no row is
lost or duplicated.

With REDIS_URL (PostgreSQL + Redis, real forking `manage.py rqworker` processes): the worker and its
work-horse are killed during generation and a new worker is started, as a supervisor would; the new
worker's recovery monitor must take the stage off "running" within 60 s. Without it (SQLite + the embedded
queue, where the worker lives in `studio`): `studio` is killed and started again.
"""
from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from django.conf import settings

from constitutions.starter import STARTER_NAME
from runs.starter import DEMO_SET_NAME
from tests.conftest import REPO_ROOT
from tests.runs.test_studio_command import _free_port, _start, _stop

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PROMPTS = 30  # one prompt a batch of 128 tokens: generation lasts long enough to kill the worker mid-way (idle too)
DETECT_TARGET_S = 60


class Database:
    """The app's database for this test, reached from the test process without Django."""

    def __init__(self, tmp_path: Path) -> None:
        if settings.EMBEDDED_QUEUE:
            self.path = tmp_path / "studio.sqlite3"
            self.url = f"sqlite:///{self.path}"
        else:
            import psycopg

            base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
            self.name = os.environ["DATABASE_URL"].rsplit("/", 1)[1] + "_worker_loss"
            with psycopg.connect(base + "/postgres", autocommit=True) as conn:
                conn.execute(f'drop database if exists "{self.name}" with (force)')
                conn.execute(f'create database "{self.name}"')
            self.url = f"{base}/{self.name}"

    def query(self, sql: str):
        if settings.EMBEDDED_QUEUE:
            with sqlite3.connect(self.path, timeout=30) as conn:
                return conn.execute(sql).fetchall()
        import psycopg

        with psycopg.connect(self.url) as conn:
            return conn.execute(sql).fetchall()

    def drop(self) -> None:
        if not settings.EMBEDDED_QUEUE:
            import psycopg

            with psycopg.connect(self.url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
                conn.execute(f'drop database if exists "{self.name}" with (force)')


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}")


def _manage(env, *args, timeout=300) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _kill_tree(pid: int) -> None:
    victims = psutil.Process(pid).children(recursive=True) + [psutil.Process(pid)]
    for proc in victims:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass


@pytest.mark.xfail(settings.EMBEDDED_QUEUE, strict=False,
                   reason="embedded mode (studio killed and restarted): generation did not start within 180 s once "
                          "in a full-suite run and passed alone; not yet understood. Redis mode is the real check.")
def test_a_killed_worker_mid_stage_is_recovered_without_lost_or_duplicated_rows(tmp_path, demo_models_cache,
                                                                                 queue_connection):
    data = tmp_path / "data"
    shutil.copytree(demo_models_cache / "demo", data / "models" / "demo")
    db = Database(tmp_path)
    env = {**os.environ, "DATABASE_URL": db.url, "STUDIO_DATA_DIR": str(data),
           "STUDIO_ADMIN_PASSWORD": "a-long-test-password"}
    if settings.EMBEDDED_QUEUE:
        env.pop("REDIS_URL", None)
    procs: list[subprocess.Popen] = []
    try:
        _manage(env, "migrate", "--verbosity", "0")
        _manage(env, "shell", "-c", "from runs.starter import ensure_starter_data; ensure_starter_data()")
        _manage(env, "launch_run", "--preset", "offline-demo", "--name", "kill-me", "--constitution", STARTER_NAME,
                "--prompt-set", DEMO_SET_NAME, "--stages", "generate,label",
                "--set", f"generation.max_prompts={PROMPTS}", "--set", "generation.batch_size=1",
                "--set", "generation.max_new_tokens=128", "--set", "judge.principle_sampling=sample")
        port = _free_port()

        def start():
            if settings.EMBEDDED_QUEUE:
                proc, out = _start(env, port)
            else:
                proc = subprocess.Popen([sys.executable, "manage.py", "rqworker", "default", "gpu"], cwd=REPO_ROOT,
                                        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                out = ""
            procs.append(proc)
            return proc, out

        worker, _ = start()
        _wait_for(lambda: db.query("select 1 from runs_stagerun where stage='generate' and status='running' "
                                   "and progress_done > 0"), timeout=180, what="generation to start")
        _kill_tree(worker.pid)  # the worker and its work-horse: kill -9, no chance to record anything
        worker.wait(timeout=10)
        killed_at = time.monotonic()
        [(status, done)] = db.query("select status, progress_done from runs_stagerun where stage='generate'")
        assert status == "running" and 0 < done < PROMPTS, (status, done)

        worker, out = start()  # a supervisor restarts it
        _wait_for(lambda: db.query("select 1 from runs_stagerun where stage='generate' and "
                                   "(status <> 'running' or attempt > 1)"),
                  timeout=120, what="the stage to be recovered")
        detect_s = time.monotonic() - killed_at
        assert detect_s <= DETECT_TARGET_S, f"the dead stage showed as running for {detect_s:.0f} s"
        _wait_for(lambda: db.query("select 1 from runs_run where name='kill-me' and status in "
                                   "('succeeded','failed','cancelled')"), timeout=300, what="the run to finish")

        assert db.query("select status from runs_run where name='kill-me'") == [("succeeded",)]
        assert db.query("select count(*), count(distinct prompt_id) from runs_completion") == [(2 * PROMPTS, PROMPTS)]
        [(pairs,)] = db.query("select count(*) from runs_comparison")
        assert pairs > 0
        assert db.query("select count(*), count(distinct comparison_id) from runs_judgment") == [(pairs, pairs)]
        [(attempt, log_tail)] = db.query("select attempt, log_tail from runs_stagerun where stage='generate'")
        assert attempt == 2
        if not settings.EMBEDDED_QUEUE:
            assert "worker lost" in log_tail and "re-queued (lost 1 of 3)" in log_tail
        else:
            assert "Resumed 1 interrupted stage(s)" in out
    finally:
        for proc in procs:
            if proc.poll() is None:
                if settings.EMBEDDED_QUEUE:
                    _stop(proc)
                else:
                    _kill_tree(proc.pid)
                    proc.wait(timeout=30)
        db.drop()
