"""`manage.py studio`: the start-up path a newcomer runs (migrate, starter data, serve, worker, Ctrl-C)."""

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import REPO_ROOT

READY = "RLAIF Studio on"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(env, port, *args, preexec_fn=None):
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "studio", "--port", str(port), *args],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=preexec_fn,
    )
    lines = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        lines.append(line)
        if READY in line:
            return proc, "".join(lines)
    proc.kill()
    pytest.fail("studio did not start:\n" + "".join(lines))


def _stop(proc, signum=signal.SIGINT) -> str:
    proc.send_signal(signum)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        # never leave a studio behind: its worker would take the jobs of the tests that follow
        proc.kill()
        out, _ = proc.communicate(timeout=30)
        pytest.fail(f"studio did not stop within 60 s of {signal.Signals(signum).name}:\n{out}")
    assert proc.returncode == 0, out
    return out


def test_studio_starts_serves_and_second_start_adds_no_starter_data(tmp_path):
    db = tmp_path / "studio.sqlite3"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{db}",
        "STUDIO_DATA_DIR": str(tmp_path / "data"),
        "STUDIO_ADMIN_PASSWORD": "a-long-test-password",
    }
    port = _free_port()
    proc, out = _start(env, port)
    try:
        assert "Created admin account 'admin' (password from STUDIO_ADMIN_PASSWORD)" in out
        assert "Created the starter constitution." in out and "Created the demo prompt set." in out
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=10) as response:
            assert response.status == 200 and b"Log in" in response.read()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert response.url.endswith("/login/?next=/")  # redirected: login required
    finally:
        out = _stop(proc)
    assert "Stopped." in out

    proc, out = _start(env, port)
    _stop(proc)
    assert "Created" not in out
    with sqlite3.connect(db) as conn:
        counts = [
            conn.execute(f"select count(*) from {table}").fetchone()[0]
            for table in (
                "auth_user",
                "constitutions_constitution",
                "constitutions_constitutionversion",
                "runs_promptset",
            )
        ]
        groups = {row[0] for row in conn.execute("select name from auth_group")}
    assert counts == [1, 1, 1, 1]
    assert groups == {"authors", "operators", "auditors", "reviewers"}


def test_extra_workers_need_redis(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}"}
    env.pop("REDIS_URL", None)
    proc = subprocess.run(
        [sys.executable, "manage.py", "studio", "--extra-workers", "2"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "--extra-workers needs REDIS_URL" in proc.stderr


def test_port_in_use_is_a_one_line_error(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}", "STUDIO_DATA_DIR": str(tmp_path)}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "manage.py", "studio", "--port", str(port)],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
        )
    assert proc.returncode != 0
    assert f"cannot serve on 127.0.0.1:{port}" in proc.stderr and "--port" in proc.stderr
    assert "Traceback" not in proc.stderr


def _ignore_sigint():  # what a shell does to a job started with `&` from a script
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_web_only_studio_stops_cleanly_on_sigint_and_sigterm(tmp_path, signum):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}", "STUDIO_DATA_DIR": str(tmp_path)}
    port = _free_port()
    proc, _ = _start(env, port, "--no-worker", preexec_fn=_ignore_sigint)
    try:
        out = _stop(proc, signum)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Stopping…" in out and "Stopped." in out and "Traceback" not in out


def test_a_stop_swallowed_during_start_up_still_stops_the_studio(monkeypatch):
    """A SIGINT that lands while a weakref finalizer runs loses its KeyboardInterrupt ("Exception ignored in");
    the studio must still stop instead of starting its worker and waiting forever (seen under CI load)."""
    import weakref
    from types import SimpleNamespace

    from runs.management.commands import studio

    monkeypatch.setattr(studio, "STOP_REQUESTED", __import__("threading").Event())

    class Doomed:
        pass

    doomed = Doomed()
    weakref.finalize(doomed, studio._interrupt, signal.SIGINT, None)
    del doomed  # the finalizer raises KeyboardInterrupt, which Python prints and ignores
    assert studio.STOP_REQUESTED.is_set()

    worked = []
    server = SimpleNamespace(run=lambda: None, close=lambda: None)
    monkeypatch.setattr(studio, "call_command", lambda *a, **k: None)
    monkeypatch.setattr(studio.Command, "_starter_data", lambda self: None)
    monkeypatch.setattr(studio, "recover_interrupted", lambda: [])
    monkeypatch.setattr(studio, "create_server", lambda *a, **k: server)
    monkeypatch.setattr(studio, "_stop_on_signals", lambda: None)
    monkeypatch.setattr(studio.connections, "close_all", lambda: None)
    monkeypatch.setattr(studio.django_rq, "get_worker", lambda *q: SimpleNamespace(work=lambda **k: worked.append(k)))
    studio.Command().handle(host="127.0.0.1", port=0, threads=1, no_worker=False, extra_workers=0)
    assert worked == []  # stopped before the worker blocked
