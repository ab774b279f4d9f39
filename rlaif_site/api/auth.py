"""Who is calling the API: a personal token (``Authorization: Bearer rls_…``) or the browser's session.

A session-authenticated write must carry the CSRF token (``X-CSRFToken``), as a form post would; a token
request has no cookie to forge, so it needs none. Either way the caller acts with the user's roles
(:func:`rlaif_site.roles.has_role`) and nothing more.
"""
from __future__ import annotations

from django.conf import settings
from ninja.errors import HttpError
from ninja.security import HttpBearer
from ninja.security.apikey import APIKeyCookie
from ninja.utils import check_csrf

from rlaif_site.models import ApiToken
from rlaif_site.roles import has_role


class TokenAuth(HttpBearer):
    """``Authorization: Bearer <token>`` with a personal API token (see :class:`rlaif_site.models.ApiToken`)."""

    def authenticate(self, request, token: str):
        user = ApiToken.authenticate(token)
        if user is not None:
            request.user = user  # the views and the shared helpers read request.user
        return user


class SessionAuth(APIKeyCookie):
    """Django's session login, with the CSRF check for unsafe methods (only once a session user exists, so an
    anonymous write gets 401, not a CSRF error)."""

    param_name = settings.SESSION_COOKIE_NAME

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or not user.is_active:
            return None
        if not getattr(request, "_ninja_csrf_exempt", False) and check_csrf(request):
            raise HttpError(403, "CSRF check failed: send the csrftoken cookie's value as X-CSRFToken")
        return user

    def authenticate(self, request, key):  # pragma: no cover - __call__ decides
        return None


AUTH = [TokenAuth(), SessionAuth()]


def require_role(request, *roles: str) -> None:
    """Raise a 403 HttpError unless the caller holds one of ``roles``."""
    if not any(has_role(request.user, role) for role in roles):
        needed = " or ".join(f"'{r}'" for r in roles)
        raise HttpError(403, f"This needs the {needed} role.")
