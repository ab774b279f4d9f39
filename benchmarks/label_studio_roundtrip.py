"""Label Studio round trip against a real Label Studio server: export an audit sample, label it there,
export the annotations and import them back as human labels.

Seeds a run with N judged pairs in a fresh SQLite database, draws its audit sample, starts Label Studio on
127.0.0.1 (its own data folder, an admin with a known token), creates a project from our ``tasks.json`` and
``label_config.xml`` through the HTTP API, submits one annotation per task as the admin (A, B and tie in
turn), downloads the project's JSON export and imports it with :func:`runs.audit.interop.import_annotations`.
One pair already holds a different browser label by the same user, so the report shows one conflict.
Prints the report's counts, the agreement figures and seconds per step.

Usage::

    LABEL_STUDIO_BIN=/opt/ls-venv/bin/label-studio python benchmarks/label_studio_roundtrip.py [--n 20]

Label Studio lives in its own virtualenv (``pip install label-studio``); without ``LABEL_STUDIO_BIN`` naming
an executable, the script says why it skipped and exits 0. Not part of CI.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
ADMIN_EMAIL = "annotator@example.com"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LabelStudio:
    """A Label Studio server started for this script, spoken to with the admin's legacy API token."""

    def __init__(self, binary: str, folder: Path, start_timeout: float):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = secrets.token_hex(20)
        env = {
            **os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(folder), "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
            "LABEL_STUDIO_USERNAME": ADMIN_EMAIL, "LABEL_STUDIO_PASSWORD": secrets.token_urlsafe(12),
            "LABEL_STUDIO_USER_TOKEN": self.token,
        }
        self.log = open(folder / "label-studio.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [binary, "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(self.port),
             "--data-dir", str(folder), "--username", env["LABEL_STUDIO_USERNAME"],
             "--password", env["LABEL_STUDIO_PASSWORD"], "--user-token", self.token],
            env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"label-studio exited with {self.process.returncode}; see {folder}/label-studio.log")
            try:
                self.call("GET", "/api/current-user/whoami")
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(1.0)
        raise RuntimeError(f"label-studio did not answer within {start_timeout:.0f} s; see {folder}/label-studio.log")

    def call(self, method: str, path: str, body=None):
        """One API call; JSON in and out."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Authorization": f"Token {self.token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def stop(self) -> None:
        """Stop the server this script started."""
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def _seed(n: int):
    """A run with ``n`` judged pairs (the judge says A for even, B for odd) and its audit sample."""
    from django.contrib.auth import get_user_model

    from constitutions.models import Constitution, ConstitutionVersion
    from runs import models as m
    from runs.audit import draw_audit_sample
    from runs.prompt_content import content_hash

    user = get_user_model().objects.create_user("annotator", email=ADMIN_EMAIL, password=secrets.token_hex(8))
    version, _ = ConstitutionVersion.objects.create_version(Constitution.objects.create(name="Round trip"), principles=[
        {"name": "Helpful", "comparison": "Which response is more helpful?", "weight": 1.0, "category": "custom",
         "enabled": True}])
    principle = version.principles.get()
    prompt_set = m.PromptSet.objects.create(name="Round trip prompts")
    run = m.Run.objects.create(name="label studio round trip", constitution_version=version, prompt_set=prompt_set)
    for i in range(n):
        prompt = m.Prompt.objects.create(prompt_set=prompt_set, index=i, text=f"Question {i}: how do tides work?",
                                         content_hash=content_hash(f"Question {i}: how do tides work?"))
        a, b = (m.Completion.objects.create(run=run, prompt=prompt, sample_index=s, model="bench",
                                            text=f"Answer {s} to question {i}: the moon's pull.") for s in (0, 1))
        comparison = m.Comparison.objects.create(run=run, prompt=prompt, completion_a=a, completion_b=b)
        m.Judgment.objects.create(comparison=comparison, principle=principle, judge_id="bench",
                                  p_a=0.8 if i % 2 == 0 else 0.2, verdict="A" if i % 2 == 0 else "B")
    draw_audit_sample(run, random_size=n, uncertain_size=0, seed=0)
    first = m.AuditItem.objects.filter(run=run).order_by("comparison_id").first()
    m.HumanLabel.objects.create(comparison_id=first.comparison_id, auditor=user, choice="tie")  # for a conflict
    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="audit pairs")
    parser.add_argument("--start-timeout", type=float, default=240.0, help="seconds to wait for Label Studio")
    args = parser.parse_args()
    binary = os.environ.get("LABEL_STUDIO_BIN", "")
    if not binary:
        print("skipped: LABEL_STUDIO_BIN is not set (the label-studio executable of its own virtualenv)")
        return 0
    if not (Path(binary).is_file() and os.access(binary, os.X_OK)) and not shutil.which(binary):
        print(f"skipped: LABEL_STUDIO_BIN={binary!r} is not an executable")
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="ls-roundtrip-"))
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/studio.sqlite3"
    os.environ["STUDIO_DATA_DIR"] = str(tmp)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rlaif_site.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    from runs.audit import build_report
    from runs.audit.interop import import_annotations, label_studio_zip

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    run = _seed(args.n)
    with zipfile.ZipFile(io.BytesIO(label_studio_zip(run))) as archive:
        tasks = json.loads(archive.read("tasks.json"))
        config = archive.read("label_config.xml").decode()
    timings["seed + export"] = time.perf_counter() - t0

    (tmp / "ls").mkdir()
    t0 = time.perf_counter()
    server = LabelStudio(binary, tmp / "ls", args.start_timeout)
    timings["start label-studio"] = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        project = server.call("POST", "/api/projects", {"title": f"Audit of run {run.pk}", "label_config": config})
        server.call("POST", f"/api/projects/{project['id']}/import", tasks)
        listed = server.call("GET", f"/api/tasks?project={project['id']}&page_size={len(tasks) + 10}")
        ls_tasks = listed["tasks"] if isinstance(listed, dict) else listed
        timings["create project + import tasks"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        for n, task in enumerate(sorted(ls_tasks, key=lambda t: t["data"]["comparison_id"])):
            choice = ("A", "B", "tie")[n % 3]
            server.call("POST", f"/api/tasks/{task['id']}/annotations/", {"result": [{
                "from_name": "preference", "to_name": "response_a", "type": "choices",
                "value": {"choices": [choice]}}]})
        timings["submit annotations"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        exported = server.call("GET", f"/api/projects/{project['id']}/export?exportType=JSON")
        timings["export"] = time.perf_counter() - t0
    finally:
        server.stop()

    t0 = time.perf_counter()
    report = import_annotations(run, "label-studio-export.json", json.dumps(exported))
    timings["import"] = time.perf_counter() - t0
    overall = build_report(run, "random")["overall"]
    alignment = overall["figures"]["alignment"]
    print(f"tasks exported: {len(tasks)}; in Label Studio: {len(ls_tasks)}; in its export: {len(exported)}")
    print(f"report: matched {report.matched}, created {report.created}, unchanged {report.unchanged}, "
          f"conflicts {len(report.conflicts)}, unmatched {len(report.unmatched)}, skipped {report.skipped}")
    print(f"annotators: {report.annotators}")
    print(f"dashboard: {overall['n_labels']} labels on {overall['n_labelled']} pairs; alignment "
          f"{alignment['value']} (n={alignment['n']})")
    for step, seconds in timings.items():
        print(f"{step:32s} {seconds:8.2f} s")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
