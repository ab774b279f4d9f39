"""Constitution pages."""
from __future__ import annotations

from django.db.models import Count, Max
from django.shortcuts import render

from constitutions.models import Constitution


def constitution_list(request):
    """Constitutions with their latest version number; archived ones only when asked."""
    constitutions = Constitution.objects.annotate(n_versions=Count("versions"), latest=Max("versions__number"))
    show_archived = bool(request.GET.get("archived"))
    if not show_archived:
        constitutions = constitutions.filter(archived=False)
    return render(
        request, "constitutions/constitution_list.html", {"constitutions": constitutions, "show_archived": show_archived}
    )
