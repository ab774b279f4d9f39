"""Admin view of API tokens: list, see who uses what, revoke; tokens are created by their users only."""
from __future__ import annotations

from django.contrib import admin
from django.utils import timezone

from rlaif_site.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "visible", "created_at", "last_used_at", "expires_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "user__username", "visible")
    readonly_fields = ("user", "name", "digest", "visible", "created_at", "last_used_at", "expires_at", "revoked_at")
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False  # a token's text is shown to its user once, on their own page

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset) -> None:
        queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
