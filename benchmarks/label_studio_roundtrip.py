"""Label Studio round trip against a real Label Studio server: export an audit sample, label it there,
export the annotations and import them back as human labels.

What it does: seeds a run with N judged pairs (the judge says A for even, B for odd) in a fresh SQLite
database and draws its audit sample; one pair already holds a browser label ``tie`` by the Studio user whose
email is the Label Studio admin's. Through Label Studio's HTTP API it creates a project from our
``label_config.xml``, imports our ``tasks.json``, adds a second Label Studio user (an outsider, no Studio
account), and submits annotations: the admin answers A, B, tie in turn (so the pre-labelled pair conflicts),
the outsider follows the judge except on every fourth task, and the admin also skips (cancels) the last task.
It then exports the project twice and imports both with :func:`runs.audit.interop.import_annotations`:

1. *Export → JSON* as the UI gives it (``GET /api/projects/<id>/export``): annotators by bare user id only;
   imported in a rolled-back transaction to check the report's note;
2. an export snapshot with ``annotations__completed_by`` expanded (annotators' emails): the labels;
3. *Export → JSON* again with Label Studio's user list (``GET /api/users``) as ``label_studio_users``: every
   answer must come back unchanged (the same identities as 2.).

It checks the counts (matched N, new 2N-1, one conflict, one skipped; the outsider external) and the agreement
figures, prints them with seconds per step, and exits 1 if any differs. Last line::

    tasks=20 annotations=40 matched=20 new=39 conflicts=1 seconds=…

Setup (Label Studio in its own virtualenv, never the project's; it pins its own Django)::

    python3 -m venv /tmp/ls-venv && /tmp/ls-venv/bin/pip install label-studio

Run, either letting the script start (and stop) a private server on 127.0.0.1 with its own data folder and
an admin with a legacy API token::

    LABEL_STUDIO_BIN=/tmp/ls-venv/bin/label-studio python benchmarks/label_studio_roundtrip.py [--n 20]

or against one already running (an admin's token: a legacy token, or a personal access token, which is
exchanged at ``/api/token/refresh``; the script deletes its project and its outsider user after)::

    LABEL_STUDIO_URL=http://127.0.0.1:8089 LABEL_STUDIO_API_KEY=… python benchmarks/label_studio_roundtrip.py

Without either, or when the server does not answer, it prints ``skipped: <reason>`` and exits 0. It is not
part of CI (pytest does not collect ``benchmarks/``); a start takes 30-60 s of CPU.
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


class Unreachable(RuntimeError):
    """The server does not answer at its URL."""


class LabelStudio:
    """A Label Studio server spoken to over its HTTP API with an admin's token; started by this script
    (:meth:`start`) or already running (:meth:`attach`)."""

    def __init__(self, url: str, authorization: str, process=None, log=None):
        self.url = url.rstrip("/")
        self.authorization = authorization
        self.process = process
        self.log = log

    @classmethod
    def start(cls, binary: str, folder: Path, start_timeout: float) -> LabelStudio:
        """Start ``binary`` on 127.0.0.1 with its data in ``folder`` and an admin holding a legacy token
        (legacy tokens are off by default since Label Studio 1.18: ``--enable-legacy-api-token``)."""
        token = secrets.token_hex(20)
        password = secrets.token_urlsafe(12)
        # Label Studio is a Django project too: none of this process's Django settings, database or Python
        # path may leak into it.
        inherited = {k: v for k, v in os.environ.items()
                     if not k.startswith(("DJANGO_", "STUDIO_", "DATABASE_", "PYTHON")) and k != "VIRTUAL_ENV"}
        env = {**inherited, "LABEL_STUDIO_BASE_DATA_DIR": str(folder),
               "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true"}
        port = _free_port()
        log = open(folder / "label-studio.log", "wb")  # noqa: SIM115 - closed in stop()
        process = subprocess.Popen(
            [binary, "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port),
             "--data-dir", str(folder), "--username", ADMIN_EMAIL, "--password", password,
             "--user-token", token, "--enable-legacy-api-token"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        server = cls(f"http://127.0.0.1:{port}", f"Token {token}", process, log)
        deadline = time.monotonic() + start_timeout
        try:
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    raise RuntimeError(f"label-studio exited with {process.returncode}; see {folder}/label-studio.log")
                try:
                    server.call("GET", "/api/current-user/whoami")
                    return server
                except Unreachable:
                    time.sleep(1.0)
            raise RuntimeError(f"label-studio did not answer within {start_timeout:.0f} s; "
                               f"see {folder}/label-studio.log")
        except BaseException:
            server.stop()
            raise

    @classmethod
    def attach(cls, url: str, token: str) -> LabelStudio:
        """A running server; ``token`` a legacy API token or a personal access token (a JWT refresh token,
        exchanged for an access token as label-studio-sdk does)."""
        if token.count(".") == 2:
            refreshed = cls(url, "").call("POST", "/api/token/refresh", {"refresh": token})
            return cls(url, f"Bearer {refreshed['access']}")
        return cls(url, f"Token {token}")

    def call(self, method: str, path: str, body=None, *, raw: bool = False):
        """One API call; JSON in and out (``raw``: the body's bytes).

        Raises:
            Unreachable: nothing answers at the URL.
            RuntimeError: an HTTP error, with Label Studio's answer.
        """
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.authorization:
            headers["Authorization"] = self.authorization
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                content = response.read()
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{method} {path}: HTTP {exc.code}: {exc.read()[:500]!r}") from None
        except (urllib.error.URLError, ConnectionError, OSError) as exc:
            raise Unreachable(f"{self.url} does not answer ({exc})") from None
        if raw:
            return content
        return json.loads(content) if content else None

    def stop(self) -> None:
        """Stop the server, if this script started it."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def _seed(n: int, email: str):
    """A run with ``n`` judged pairs (the judge says A for even, B for odd) and its audit sample; the Studio
    user with ``email`` labelled the first pair ``tie`` in the browser."""
    from django.contrib.auth import get_user_model

    from constitutions.models import Constitution, ConstitutionVersion
    from runs import models as m
    from runs.audit import draw_audit_sample
    from runs.prompt_content import content_hash

    user = get_user_model().objects.create_user("annotator", email=email, password=secrets.token_hex(8))
    version, _ = ConstitutionVersion.objects.create_version(
        Constitution.objects.create(name="Round trip"), author=user, principles=[
            {"name": "Helpful", "comparison": "Which response is more helpful?", "weight": 1.0,
             "category": "custom", "enabled": True}])
    principle = version.principles.get()
    prompt_set = m.PromptSet.objects.create(name="Round trip prompts")
    run = m.Run.objects.create(name="label studio round trip", constitution_version=version, prompt_set=prompt_set)
    for i in range(n):
        text = f"Question {i}: how do tides work?"
        prompt = m.Prompt.objects.create(prompt_set=prompt_set, index=i, text=text, content_hash=content_hash(text))
        a, b = (m.Completion.objects.create(run=run, prompt=prompt, sample_index=s, model="bench",
                                            text=f"Answer {s} to question {i}: the moon's pull.") for s in (0, 1))
        comparison = m.Comparison.objects.create(run=run, prompt=prompt, completion_a=a, completion_b=b)
        m.Judgment.objects.create(comparison=comparison, principle=principle, judge_id="bench",
                                  p_a=0.8 if i % 2 == 0 else 0.2, verdict="A" if i % 2 == 0 else "B")
    draw_audit_sample(run, random_size=n, uncertain_size=0, seed=0)
    first = m.AuditItem.objects.filter(run=run).order_by("comparison_id").first()
    m.HumanLabel.objects.create(comparison_id=first.comparison_id, auditor=user, choice="tie")  # for a conflict
    return run, user


def _choices(n: int) -> tuple[str, str]:
    """The admin's and the outsider's answer to the ``n``-th task (in comparison order)."""
    judge = "A" if n % 2 == 0 else "B"
    outsider = judge if n % 4 != 3 else {"A": "B", "B": "A"}[judge]
    return ("A", "B", "tie")[n % 3], outsider


def _answer(choice: str, completed_by: int | None = None) -> dict:
    body = {"result": [{"from_name": "preference", "to_name": "response_a", "type": "choices",
                        "value": {"choices": [choice]}}]}
    if completed_by is not None:
        body["completed_by"] = completed_by  # an admin may submit on another user's behalf
    return body


def _snapshot(server: LabelStudio, project_id: int) -> list:
    """An export snapshot with annotators expanded to ``{id, email, first_name, last_name}``."""
    export = server.call("POST", f"/api/projects/{project_id}/exports", {
        "title": "round trip", "serialization_options": {"annotations__completed_by": {"only_id": False}}})
    deadline = time.monotonic() + 120
    while export["status"] not in ("completed", "failed") and time.monotonic() < deadline:
        time.sleep(0.5)
        export = server.call("GET", f"/api/projects/{project_id}/exports/{export['id']}")
    if export["status"] != "completed":
        raise RuntimeError(f"export snapshot {export['id']} ended {export['status']!r}")
    return json.loads(server.call(
        "GET", f"/api/projects/{project_id}/exports/{export['id']}/download?exportType=JSON", raw=True))


def _connect(args) -> tuple[LabelStudio | None, str, Path | None]:
    """``(server, why not, folder)``: the server to use, or None and the reason to skip."""
    url, token = os.environ.get("LABEL_STUDIO_URL", ""), os.environ.get("LABEL_STUDIO_API_KEY", "")
    binary = os.environ.get("LABEL_STUDIO_BIN", "")
    if url:
        if not token:
            return None, "LABEL_STUDIO_URL is set but LABEL_STUDIO_API_KEY (an admin's API token) is not", None
        try:
            server = LabelStudio.attach(url, token)
            server.call("GET", "/api/current-user/whoami")
        except Unreachable as exc:
            return None, f"Label Studio is not running: {exc}", None
        return server, "", None
    if not binary:
        return None, ("neither LABEL_STUDIO_URL (a running Label Studio) nor LABEL_STUDIO_BIN (the label-studio "
                      "executable of its own virtualenv) is set; see this script's docstring"), None
    if not (Path(binary).is_file() and os.access(binary, os.X_OK)) and not shutil.which(binary):
        return None, f"LABEL_STUDIO_BIN={binary!r} is not an executable (pip install label-studio)", None
    folder = Path(tempfile.mkdtemp(prefix="ls-roundtrip-server-"))
    return LabelStudio.start(binary, folder, args.start_timeout), "", folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="audit pairs (at least 4)")
    parser.add_argument("--start-timeout", type=float, default=240.0, help="seconds to wait for Label Studio")
    args = parser.parse_args()
    if args.n < 4:
        parser.error("--n must be at least 4")
    started = time.perf_counter()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        server, why_not, server_folder = _connect(args)
    except RuntimeError as exc:  # refused token, a server that would not start
        print(f"error: {exc}")
        return 1
    if server is None:
        print(f"skipped: {why_not}")
        return 0
    timings["start label-studio" if server_folder else "attach"] = time.perf_counter() - t0
    try:
        return _round_trip(server, args.n, timings, started)
    finally:
        server.stop()
        if server_folder:
            shutil.rmtree(server_folder, ignore_errors=True)


def _round_trip(server: LabelStudio, n: int, timings: dict[str, float], started: float) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="ls-roundtrip-"))
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/studio.sqlite3"
    os.environ["STUDIO_DATA_DIR"] = str(tmp)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rlaif_site.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import transaction

    call_command("migrate", interactive=False, verbosity=0)
    from runs.audit import build_report
    from runs.audit.interop import import_annotations, label_studio_zip
    from runs.models import HumanLabel

    admin = server.call("GET", "/api/current-user/whoami")
    t0 = time.perf_counter()
    run, studio_user = _seed(n, admin["email"])
    with zipfile.ZipFile(io.BytesIO(label_studio_zip(run))) as archive:
        tasks = json.loads(archive.read("tasks.json"))
        config = archive.read("label_config.xml").decode()
    timings["seed + export"] = time.perf_counter() - t0

    failures: list[str] = []

    def expect(what: str, got, wanted) -> None:
        if got != wanted:
            failures.append(f"{what}: got {got!r}, expected {wanted!r}")

    project_id = outsider = None
    try:
        t0 = time.perf_counter()
        project_id = server.call("POST", "/api/projects", {"title": f"Audit of run {run.pk}",
                                                           "label_config": config})["id"]
        server.call("POST", f"/api/projects/{project_id}/import", tasks)
        listed = server.call("GET", f"/api/tasks?project={project_id}&page_size={len(tasks) + 10}")
        ls_tasks = listed["tasks"] if isinstance(listed, dict) else listed
        outsider = server.call("POST", "/api/users/", {
            "email": f"outsider-{secrets.token_hex(4)}@example.org", "username": f"outsider-{secrets.token_hex(4)}",
            "first_name": "Out", "last_name": "Sider"})
        timings["create project + import tasks"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        ordered = sorted(ls_tasks, key=lambda t: t["data"]["comparison_id"])
        for number, task in enumerate(ordered):
            mine, theirs = _choices(number)
            server.call("POST", f"/api/tasks/{task['id']}/annotations/", _answer(mine))
            server.call("POST", f"/api/tasks/{task['id']}/annotations/", _answer(theirs, outsider["id"]))
        server.call("POST", f"/api/tasks/{ordered[-1]['id']}/annotations/", {"result": [], "was_cancelled": True})
        timings["submit annotations"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        plain = server.call("GET", f"/api/projects/{project_id}/export?exportType=JSON")
        ls_users = server.call("GET", "/api/users/")
        timings["export (Export → JSON)"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        snapshot = _snapshot(server, project_id)
        timings["export (snapshot, emails)"] = time.perf_counter() - t0
    finally:
        if server.process is None:  # a server we did not start: leave it as we found it
            if project_id is not None:
                server.call("DELETE", f"/api/projects/{project_id}/")
            if outsider is not None:
                try:
                    server.call("DELETE", f"/api/users/{outsider['id']}/")
                except RuntimeError as exc:
                    print(f"note: the outsider user {outsider['email']} was not deleted ({exc})")

    annotations = sum(len(t["annotations"]) for t in snapshot)
    labels_before = HumanLabel.objects.count()

    # 1. Export → JSON alone: annotators are bare ids, so nobody matches a user; the report says so.
    t0 = time.perf_counter()
    with transaction.atomic():
        by_id = import_annotations(run, "project-export.json", json.dumps(plain))
        transaction.set_rollback(True)
    timings["import (Export → JSON, dry)"] = time.perf_counter() - t0
    expect("plain export: annotators", sorted(by_id.annotators.values()),
           sorted(f"label-studio:user {i}" for i in (admin["id"], outsider["id"])))
    expect("plain export: notes", len(by_id.notes), 1)
    expect("plain export: conflicts", len(by_id.conflicts), 0)

    # 2. The snapshot with emails: the admin is the Studio user, the outsider an external annotator.
    t0 = time.perf_counter()
    report = import_annotations(run, "project-snapshot.json", json.dumps(snapshot))
    timings["import (snapshot)"] = time.perf_counter() - t0
    expect("tasks in Label Studio", len(ls_tasks), n)
    expect("tasks in its export", len(snapshot), n)
    expect("annotations in its export", annotations, 2 * n + 1)
    expect("matched", report.matched, n)
    expect("new labels", report.created, 2 * n - 1)
    expect("unchanged", report.unchanged, 0)
    expect("skipped", report.skipped, 1)
    expect("unmatched", report.unmatched, [])
    expect("conflicts", [(c["existing"], c["imported"], c["annotator"]) for c in report.conflicts],
           [("tie", "A", f"user {studio_user.username}")])
    expect("annotators", report.annotators, {admin["email"]: f"user {studio_user.username}",
                                             outsider["email"]: f"label-studio:{outsider['email']}"})
    expect("notes", report.notes, [])
    expect("labels written", HumanLabel.objects.count() - labels_before, 2 * n - 1)

    # 3. Export → JSON with Label Studio's user list: the same identities, so nothing new.
    t0 = time.perf_counter()
    again = import_annotations(run, "project-export.json", json.dumps(plain), label_studio_users=ls_users)
    timings["import (Export → JSON + users)"] = time.perf_counter() - t0
    expect("re-import: new, unchanged, conflicts", (again.created, again.unchanged, len(again.conflicts)),
           (0, 2 * n - 1, 1))

    t0 = time.perf_counter()
    audit = build_report(run, "random")
    timings["audit report"] = time.perf_counter() - t0
    overall = audit["overall"]
    alignment, kappa = overall["figures"]["alignment"], overall["figures"].get("kappa") or {}
    expect("labelled pairs", overall["n_labelled"], n)
    expect("labels", overall["n_labels"], 2 * n)
    # the admin's label on pair 0 stays the browser's tie; then A,B,tie in turn against the judge's A,B,A,B…
    admin_choices = ["tie"] + [_choices(k)[0] for k in range(1, n)]
    judge = ["A" if k % 2 == 0 else "B" for k in range(n)]
    decisive = [(c, j) for c, j in zip(admin_choices, judge, strict=True) if c != "tie"]
    decisive += [(_choices(k)[1], j) for k, j in enumerate(judge)]
    expect("alignment n", alignment["n"], len(decisive))
    expect("alignment", round(alignment["value"], 6), round(sum(c == j for c, j in decisive) / len(decisive), 6))
    per_auditor = {a["name"]: a for a in audit["auditors"]["auditors"]}

    print(f"label-studio {server.call('GET', '/api/version').get('release', '?')} at {server.url}")
    print(f"tasks exported: {len(tasks)}; in Label Studio: {len(ls_tasks)}; in its export: {len(snapshot)} "
          f"with {annotations} annotations")
    print(f"Export → JSON alone: annotators {by_id.annotators}; note: {by_id.notes[0] if by_id.notes else '-'}")
    print(f"snapshot import: matched {report.matched}, new {report.created}, unchanged {report.unchanged}, "
          f"conflicts {len(report.conflicts)}, unmatched {len(report.unmatched)}, skipped {report.skipped}")
    print(f"annotators: {report.annotators}")
    print(f"Export → JSON + users re-import: new {again.created}, unchanged {again.unchanged}, "
          f"conflicts {len(again.conflicts)}")
    print(f"audit: {overall['n_labels']} labels on {overall['n_labelled']} pairs; AI alignment "
          f"{alignment['value']:.3f} (n={alignment['n']}); kappa {kappa.get('value', '-')}")
    for name, row in sorted(per_auditor.items()):
        vs_ai, others = row.get("vs_ai") or {}, row.get("with_others") or {}
        print(f"  {name}: {row['n_labels']} labels; vs AI {vs_ai.get('value')} (n={vs_ai.get('n')}); "
              f"with others {others.get('value')} (n={others.get('n')})")
    for step, seconds in timings.items():
        print(f"{step:34s} {seconds:8.2f} s")
    shutil.rmtree(tmp, ignore_errors=True)
    for failure in failures:
        print(f"FAILED {failure}")
    print(f"tasks={len(snapshot)} annotations={annotations} matched={report.matched} new={report.created} "
          f"conflicts={len(report.conflicts)} seconds={time.perf_counter() - started:.1f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
