"""Personal API tokens: stored hashed, shown once, revocable, expiring, acting with the user's roles only;
the browser's session keeps working, with CSRF on for its writes; the docs page renders under the CSP."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from rlaif_site.models import ApiToken, token_digest
from tests import factories
from tests.api.conftest import Api

pytestmark = pytest.mark.django_db

DOCUMENT = "name: Session made\nprinciples:\n  - name: Honest\n    comparison: Which response is more honest?\n"


def test_a_token_is_stored_as_its_sha256_only(author):
    row, token = ApiToken.issue(author, "laptop")
    assert token.startswith("rls_") and len(token) > 40
    row.refresh_from_db()
    assert row.digest == token_digest(token) and token not in (row.digest, row.visible)
    assert row.visible == token[:12]
    assert ApiToken.authenticate(token) == author
    assert ApiToken.authenticate(token[:-1] + ("A" if token[-1] != "A" else "B")) is None


def test_the_tokens_page_shows_a_new_token_once_and_lists_it_without_it(client, author):
    client.force_login(author)
    response = client.post("/account/tokens/", {"name": "cluster", "expires_in_days": "30"})
    assert response.status_code == 200
    token = re.search(rb'<pre id="new-token">(rls_[^<]+)</pre>', response.content).group(1).decode()
    row = ApiToken.objects.get(user=author)
    assert row.name == "cluster" and row.digest == token_digest(token)
    assert timedelta(days=29) < row.expires_at - timezone.now() <= timedelta(days=30)
    again = client.get("/account/tokens/")
    assert token.encode() not in again.content and row.visible.encode() in again.content
    assert Api(token).get("/runs/").status_code == 200


def test_the_tokens_page_needs_a_login(client):
    response = client.get("/account/tokens/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_a_revoked_token_stops_working_at_once(client, operator):
    row, token = ApiToken.issue(operator, "ci")
    api = Api(token)
    assert api.get("/runs/").status_code == 200
    client.force_login(operator)
    assert client.post(f"/account/tokens/{row.pk}/revoke/").status_code == 302
    response = api.get("/runs/")
    assert response.status_code == 401 and "Authentication required" in response.json()["detail"]
    row.refresh_from_db()
    assert row.state == "revoked"


def test_a_user_cannot_revoke_another_users_token(client, operator, author):
    row, token = ApiToken.issue(operator, "ci")
    client.force_login(author)
    assert client.post(f"/account/tokens/{row.pk}/revoke/").status_code == 404
    assert Api(token).get("/runs/").status_code == 200


def test_an_expired_token_is_refused(operator):
    _row, token = ApiToken.issue(operator, "short", expires_at=timezone.now() + timedelta(seconds=60))
    assert Api(token).get("/runs/").status_code == 200
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert Api(token).get("/runs/").status_code == 401


def test_a_deactivated_users_token_is_refused(operator):
    _row, token = ApiToken.issue(operator, "ci")
    operator.is_active = False
    operator.save()
    assert Api(token).get("/runs/").status_code == 401


def test_last_used_is_written_at_most_once_a_minute(operator):
    row, token = ApiToken.issue(operator, "ci")
    assert row.last_used_at is None
    Api(token).get("/runs/")
    row.refresh_from_db()
    first = row.last_used_at
    assert first is not None
    Api(token).get("/runs/")
    row.refresh_from_db()
    assert row.last_used_at == first  # within the minute: not written again
    ApiToken.objects.update(last_used_at=first - timedelta(minutes=2))
    Api(token).get("/runs/")
    row.refresh_from_db()
    assert row.last_used_at > first - timedelta(minutes=1)


def test_a_token_acts_with_its_users_roles_and_nothing_more(viewer, author):
    _r, viewer_token = ApiToken.issue(viewer, "v")
    _r, author_token = ApiToken.issue(author, "a")
    assert Api(viewer_token).post("/constitutions/", {"document": DOCUMENT}).status_code == 403
    assert Api(author_token).post("/constitutions/", {"document": DOCUMENT}).status_code == 201
    # the author's token does not make its holder an operator
    assert Api(author_token).post("/external-runs/", {"name": "x"}).status_code == 403


def test_token_writes_need_no_csrf_but_session_writes_do(author):
    _r, token = ApiToken.issue(author, "a")
    assert Api(token).post("/constitutions/", {"document": DOCUMENT}).status_code == 201

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(author)
    assert browser.get("/api/v1/constitutions/").status_code == 200  # reads need no CSRF token
    body = {"document": DOCUMENT.replace("Session made", "Second")}
    refused = browser.post("/api/v1/constitutions/", body, content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    browser.get("/account/tokens/")  # any page sets the csrftoken cookie
    csrf = browser.cookies["csrftoken"].value
    accepted = browser.post("/api/v1/constitutions/", body, content_type="application/json",
                            headers={"X-CSRFToken": csrf})
    assert accepted.status_code == 201, accepted.content


def test_an_anonymous_write_is_a_401_not_a_csrf_error():
    response = Client(enforce_csrf_checks=True).post("/api/v1/constitutions/", {"document": DOCUMENT},
                                                     content_type="application/json")
    assert response.status_code == 401


def test_the_docs_page_renders_from_local_static_files_under_the_csp(client, viewer):
    client.force_login(viewer)
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.content.decode()
    csp = page["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    executable = [(attrs, body) for attrs, body in scripts if 'type="application/json"' not in attrs]
    assert executable and all('src="/static/ninja/' in attrs and not body.strip() for attrs, body in executable)
    for attrs, _ in executable:
        src = re.search(r'src="([^"]+)"', attrs).group(1)
        assert client.get(src).status_code == 200, src  # served locally (whitenoise), no CDN
    assert "cdn" not in html.lower()
    schema = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/runs/" in schema["paths"] and "/api/v1/external-runs/" in schema["paths"]
    assert {"TokenAuth", "SessionAuth"} <= set(schema["components"]["securitySchemes"])


def test_the_docs_need_a_login_and_the_schema_a_login_or_a_token(client, viewer):
    assert client.get("/api/v1/docs")["Location"].startswith("/login/")
    assert client.get("/api/v1/openapi.json")["Location"].startswith("/login/")
    _row, token = ApiToken.issue(viewer, "schema")
    schema = Api(token).get("/openapi.json")
    assert schema.status_code == 200 and "/api/v1/runs/{run_id}" in schema.json()["paths"]
    refused = Api("rls_wrong").get("/openapi.json")
    assert refused.status_code == 401 and refused["Content-Type"].startswith("application/json")
    client.force_login(viewer)
    nav = client.get("/account/tokens/").content.decode()
    assert 'href="/api/v1/docs"' in nav and 'href="/account/tokens/"' in nav



def test_a_superuser_revokes_a_token_from_the_admin(client, operator):
    row, token = ApiToken.issue(operator, "ci")
    admin_user = factories.make_user("root", is_superuser=True, is_staff=True)
    client.force_login(admin_user)
    listing = client.get("/admin/rlaif_site/apitoken/")
    assert listing.status_code == 200 and row.visible.encode() in listing.content
    assert token.encode() not in listing.content
    client.post("/admin/rlaif_site/apitoken/", {"action": "revoke", "_selected_action": [row.pk]})
    assert Api(token).get("/runs/").status_code == 401


def test_a_busy_database_does_not_fail_a_request_over_its_last_used_write(operator):
    from django.db import OperationalError, connection

    def locked(execute, sql, params, many, context):
        if sql.lstrip().lower().startswith("update") and "rlaif_site_apitoken" in sql.lower():
            raise OperationalError("database is locked")
        return execute(sql, params, many, context)

    row, token = ApiToken.issue(operator, "ci")
    with connection.execute_wrapper(locked):
        assert Api(token).get("/runs/").status_code == 200
    row.refresh_from_db()
    assert row.last_used_at is None  # not recorded this time; recorded at the next use
    Api(token).get("/runs/")
    row.refresh_from_db()
    assert row.last_used_at is not None
