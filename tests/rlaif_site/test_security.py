"""Deployment security: generated SECRET_KEY, check --deploy, CSP, login throttling, the queue pages and
Django's error pages without secrets."""
import os
import stat
import subprocess
import sys

import pytest
from django.test import RequestFactory, override_settings
from django.urls import reverse

from rlaif_site import env
from rlaif_site.debug import RedactingExceptionReporter
from tests import factories
from tests.conftest import REPO_ROOT


def test_secret_key_is_generated_once_and_kept_private(tmp_path):
    key_file = tmp_path / "data" / "secret_key"
    first = env.secret_key(None, key_file)
    assert len(first) >= 50 and "insecure" not in first
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert env.secret_key("", key_file) == first  # the next start reads the same key back
    assert env.secret_key("from-env", key_file) == "from-env"
    assert env.secret_key(None, tmp_path / "other" / "secret_key") != first


def test_settings_never_use_a_key_from_the_source(tmp_path):
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    environ = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    environ |= {"STUDIO_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "rlaif_site.settings"}
    out = subprocess.run([sys.executable, "-c", f"import django; django.setup(); {code}"], cwd=REPO_ROOT,
                         env=environ, capture_output=True, text=True, check=True).stdout.strip()
    assert out == (tmp_path / "secret_key").read_text().strip()
    assert "insecure" not in out and "insecure" not in (REPO_ROOT / "rlaif_site" / "settings.py").read_text()


def test_check_deploy_is_clean_with_the_production_variables(tmp_path):
    environ = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    environ |= {"STUDIO_DATA_DIR": str(tmp_path), "STUDIO_HTTPS": "true", "ALLOWED_HOSTS": "studio.example.org"}
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=REPO_ROOT, env=environ, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.django_db
def test_pages_carry_a_content_security_policy(client, viewer):
    client.force_login(viewer)
    policy = client.get(reverse("runs:list"))["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives["script-src"] == "'self'"
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"


def test_no_template_holds_inline_script_or_event_handlers():
    """script-src 'self' blocks inline scripts: every script must be a static file."""
    import re

    for path in REPO_ROOT.glob("*/templates/**/*.html"):
        text = path.read_text()
        for match in re.finditer(r"<script(?P<attrs>[^>]*)>", text):
            attrs = match.group("attrs")
            assert "src=" in attrs, f"inline <script> in {path.relative_to(REPO_ROOT)}"
        assert not re.search(r"\son[a-z]+\s*=", text), f"inline event handler in {path.relative_to(REPO_ROOT)}"


@pytest.mark.django_db
def test_logins_are_throttled_per_username_and_address(client, settings):
    factories.make_user("alice")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = client.post(reverse("login"), {"username": "alice", "password": "wrong"})
        assert response.status_code == 200
    locked = client.post(reverse("login"), {"username": "alice", "password": "wrong"})
    assert locked.status_code == 429 and b"Too many failed logins" in locked.content
    # Locked out: even the right password is refused until the cool-off ends.
    again = client.post(reverse("login"), {"username": "alice", "password": "pw-for-tests-123"})
    assert again.status_code == 429
    # Another account from the same address is not locked.
    factories.make_user("bob")
    ok = client.post(reverse("login"), {"username": "bob", "password": "pw-for-tests-123"})
    assert ok.status_code == 302


@pytest.mark.django_db
def test_wrong_password_shows_one_message(client):
    factories.make_user("carol")
    page = client.post(reverse("login"), {"username": "carol", "password": "nope"}).content.decode()
    assert page.count("correct username and password") + page.count("didn't match") == 1


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/admin/rq/", "/admin/rq/queues/0/", "/admin/rq/queues/0/empty/",
                                  "/admin/rq/workers/0/", "/admin/django_rq/dashboard/"])
def test_queue_pages_are_for_superusers_only(client, path):
    staff = factories.make_user("staffer", is_staff=True)
    client.force_login(staff)
    assert client.get(path).status_code == 403
    root = factories.make_user("root", is_staff=True, is_superuser=True)
    client.force_login(root)
    assert client.get(path).status_code == 200


@pytest.mark.django_db
def test_debug_error_page_shows_no_password_or_key(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://studio:db-pass-4242@127.0.0.1:5432/x")
    monkeypatch.setenv("STUDIO_KEY_DEBUGTEST", "sk-debug-secret-31")
    request = RequestFactory().get("/runs/", HTTP_X_NOTE="redis://:db-pass-4242@h:6379/0")
    request.META["DATABASE_URL"] = os.environ["DATABASE_URL"]  # runserver puts the process env here
    api_key = "sk-debug-secret-31"  # noqa: F841 - a local variable the traceback shows
    with override_settings(DEBUG=True, REDIS_URL="redis://:db-pass-4242@h:6379/0",
                           RQ_QUEUES={"default": {"URL": "redis://:db-pass-4242@h:6379/0"}}):
        try:
            raise RuntimeError("endpoint said: bad key sk-debug-secret-31")
        except RuntimeError:
            reporter = RedactingExceptionReporter(request, *sys.exc_info())
            html = reporter.get_traceback_html()
            text = reporter.get_traceback_text()
    for page in (html, text):
        assert "db-pass-4242" not in page and "sk-debug-secret-31" not in page
        assert "[redacted:DATABASE_URL]" in page and "[redacted:STUDIO_KEY_DEBUGTEST]" in page


def test_error_reporter_is_the_redacting_one(settings):
    assert settings.DEFAULT_EXCEPTION_REPORTER == "rlaif_site.debug.RedactingExceptionReporter"
    assert settings.DEFAULT_EXCEPTION_REPORTER_FILTER == "rlaif_site.debug.RedactingExceptionReporterFilter"


def test_bad_database_url_error_names_no_password():
    with pytest.raises(env.ConfigError) as info:
        env.database_config("mysql://root:hunter2-pass@localhost/db", None)
    assert "hunter2-pass" not in str(info.value) and "***" in str(info.value)


def test_failed_jobs_keep_their_traceback_without_secrets(monkeypatch, queue_connection):
    """RQ stores a failed job's traceback in Redis (shown on the queue pages): secret values are redacted."""
    from rq.job import Job

    from rlaif_site.queueing import StudioWorker, get_queue

    monkeypatch.setenv("STUDIO_KEY_RQTEST", "sk-rq-secret-8080")
    queue = get_queue()
    job = queue.enqueue("tests.rlaif_site.test_security.leak_a_key")
    worker = StudioWorker([queue], connection=queue.connection)
    worker.work(burst=True)
    failed = Job.fetch(job.id, connection=queue.connection)
    text = failed.latest_result().exc_string
    assert "sk-rq-secret-8080" not in text and "[redacted:STUDIO_KEY_RQTEST]" in text


def leak_a_key():
    raise RuntimeError(f"the endpoint said: bad key {os.environ['STUDIO_KEY_RQTEST']}")
