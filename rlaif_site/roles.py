"""Roles in RLAIF Studio, as Django groups: authors edit constitutions, operators launch runs,
auditors label, reviewers settle the audit pairs auditors disagree on. Superusers hold every role."""
from __future__ import annotations

from functools import wraps

from django.core.exceptions import PermissionDenied

AUTHORS = "authors"
OPERATORS = "operators"
AUDITORS = "auditors"
REVIEWERS = "reviewers"
ROLES = (AUTHORS, OPERATORS, AUDITORS, REVIEWERS)


def has_role(user, role: str) -> bool:
    """True when ``user`` is active and a superuser or a member of group ``role``."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.is_superuser:
        return True
    cache = getattr(user, "_studio_roles", None)
    if cache is None:
        cache = set(user.groups.values_list("name", flat=True))
        user._studio_roles = cache
    return role in cache


def role_required(role: str):
    """View decorator: 403 unless the logged-in user has ``role``."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not has_role(request.user, role):
                raise PermissionDenied(f"This page needs the '{role}' role.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
