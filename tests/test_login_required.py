"""Every URL of the site needs a login (the login page itself and static files aside)."""
import pytest
from django.urls import URLPattern, URLResolver, get_resolver

PUBLIC = {"login"}


def _patterns(resolver, prefix=""):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from _patterns(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.name


def _concrete(route: str) -> str:
    """Turn a route into a URL by filling converters with plausible values."""
    import re

    route = re.sub(r"<int:[^>]+>", "1", route)
    route = re.sub(r"<(?:str|slug):[^>]+>", "x", route)
    route = re.sub(r"<path:[^>]+>", "x", route)
    route = re.sub(r"<[^>]+>", "1", route)
    route = route.lstrip("^").rstrip("$").replace("\\Z", "")
    return "/" + route


def site_urls():
    seen = set()
    for route, name in _patterns(get_resolver()):
        if name in PUBLIC or "(?P" in route or route.startswith("admin/"):
            continue
        if route.startswith("api/v1/") and name != "openapi-view":
            continue  # the JSON API (and its schema) answers 401 itself: tests/api/test_roles.py, test_tokens.py
        url = _concrete(route)
        if url not in seen:
            seen.add(url)
            yield url


@pytest.mark.django_db
@pytest.mark.parametrize("url", list(site_urls()))
def test_anonymous_user_is_sent_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302, url
    assert response["Location"].startswith("/login/"), response["Location"]


@pytest.mark.django_db
def test_admin_needs_login(client):
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.django_db
def test_login_page_is_public_and_has_csrf(client):
    response = client.get("/login/")
    assert response.status_code == 200
    assert b"csrfmiddlewaretoken" in response.content


@pytest.mark.django_db
def test_missing_page_is_the_site_404(client, viewer):
    client.force_login(viewer)
    response = client.get("/runs/999999/")
    assert response.status_code == 404
    assert b"There is nothing at this address" in response.content
