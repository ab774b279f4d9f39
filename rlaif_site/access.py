"""Access to the job-queue dashboard: superusers only.

django-rq's pages (ours at ``/admin/rq/``, and the ones it registers inside the Django admin) let their user
empty queues, delete, requeue and stop jobs, and read job arguments and tracebacks. django-rq admits any
``is_staff`` account; in RLAIF Studio staff may be auditors or authors with admin access to their own models,
so these pages are reserved for superusers, whichever URL reaches them.
"""
from __future__ import annotations

from django.core.exceptions import PermissionDenied


def is_queue_view(view_func) -> bool:
    """True for any view function of django-rq (wrapped views keep their module through ``functools.wraps``)."""
    module = getattr(view_func, "__module__", "") or ""
    return module == "django_rq" or module.startswith("django_rq.")


class QueueDashboardSuperuserOnly:
    """Middleware: 403 for django-rq views unless the user is an active superuser (anonymous users are sent to
    the login page first by ``LoginRequiredMiddleware``, which runs before this one)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if not is_queue_view(view_func):
            return None
        user = request.user
        if user.is_authenticated and user.is_active and user.is_superuser:
            return None
        if not user.is_authenticated:
            return None  # LoginRequiredMiddleware (or the view's own staff check) sends them to log in
        raise PermissionDenied("The job queue pages need a superuser account.")
