"""The API object: version 1 under ``/api/v1/``, its routers, authentication and error bodies.

Why django-ninja: request and response bodies are typed pydantic schemas, validated on the way in; the
OpenAPI schema is generated from the same code (so it cannot drift from the endpoints); and its Swagger UI is
served from the package's own static files, which works offline and under the site's strict
Content-Security-Policy (``script-src 'self'``).
"""
from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from rlaif_site.api import audit, audit_interop, constitutions, external, prompts, run_results, runs
from rlaif_site.api.auth import AUTH
from rlaif_site.api.errors import ApiError
from rlaif_site.models import ApiToken
from training.redaction import redact


def docs_access(view):
    """The docs page and ``openapi.json`` need a logged-in user (else the login page), or, for scripts, a
    valid token in ``Authorization: Bearer`` (else a 401 JSON body)."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        header = request.headers.get("Authorization", "")
        if header[:7].lower() == "bearer ":
            user = ApiToken.authenticate(header[7:].strip())
            if user is None:
                return JsonResponse({"detail": "Invalid, revoked or expired API token.", "errors": []}, status=401)
            request.user = user
            return view(request, *args, **kwargs)
        return login_required(view)(request, *args, **kwargs)

    return wrapped


api = NinjaAPI(
    title="RLAIF Studio API",
    version="1",
    description=(
        "Drive RLAIF Studio from scripts: constitutions, prompt sets, runs, judgments, audits and external "
        "training runs. Authenticate with a personal API token (`Authorization: Bearer rls_…`, created on the "
        "*API tokens* page) or, from the browser, with your session (writes then need the `X-CSRFToken` header). "
        "A token acts with its user's roles: authors edit constitutions, operators launch runs and import prompt "
        "sets, auditors label. Errors are JSON: `{\"detail\": ..., \"errors\": [{\"path\", \"message\"}]}`."
    ),
    auth=AUTH,
    urls_namespace="api",
    docs_decorator=docs_access,  # the docs page and schema: a logged-in user, or a token
)
api.add_router("/constitutions", constitutions.router, tags=["constitutions"])
api.add_router("/prompt-sets", prompts.router, tags=["prompt sets"])
api.add_router("/runs", runs.router, tags=["runs"])
api.add_router("/runs", run_results.router, tags=["run results"])
api.add_router("/runs", audit.router, tags=["audit"])
api.add_router("/runs", audit_interop.router, tags=["audit"])
api.add_router("/external-runs", external.router, tags=["external runs"])


@api.exception_handler(ApiError)
def _api_error(request, exc: ApiError):
    response = api.create_response(request, exc.body(), status=exc.status)
    for name, value in exc.headers.items():
        response[name] = value
    return response


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, exc):
    return api.create_response(
        request, {"detail": "Authentication required: send 'Authorization: Bearer <token>' with a valid, "
                            "unrevoked, unexpired API token, or log in.", "errors": []}, status=401,
    )


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    return api.create_response(request, {"detail": str(exc), "errors": []}, status=exc.status_code)


@api.exception_handler(Http404)
def _not_found(request, exc):
    return api.create_response(request, {"detail": str(exc) or "Not found.", "errors": []}, status=404)


@api.exception_handler(ValidationError)
def _invalid(request, exc: ValidationError):
    errors = []
    for error in exc.errors:
        loc = [str(part) for part in error.get("loc", ())]
        # ninja puts the source first ("body", "query", "path", "form", "file") and the payload name next
        if loc and loc[0] in ("body", "query", "path", "form", "file", "header", "cookie"):
            loc = loc[1:]
            if len(loc) > 1 and loc[0] in ("payload", "data", "filters"):
                loc = loc[1:]
        errors.append({"path": ".".join(loc), "message": redact(str(error.get("msg", "invalid")))})
    return api.create_response(request, {"detail": "Invalid request.", "errors": errors}, status=422)


def urlpatterns() -> list:
    """The API's URL patterns, marked as not needing a login: the API answers an anonymous caller itself,
    with a 401 JSON body, instead of ``LoginRequiredMiddleware``'s redirect to the login page; the docs page
    and the schema check access themselves (:func:`docs_access`)."""
    patterns, _app, _namespace = api.urls
    for pattern in patterns:
        pattern.callback.login_required = False
    return patterns
