"""Personal API tokens: a user's key to the JSON API (``Authorization: Bearer <token>``).

A token is shown once, when it is created; the database keeps only its SHA-256 digest and a short visible
prefix (to tell tokens apart on the tokens page). A token acts with its user's roles and nothing more
(:func:`rlaif_site.roles.has_role`), stops working when revoked or past its expiry, and records when it was
last used (written at most once a minute, so a busy script does not write on every request).
"""
from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, models, transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

#: Every token starts with this, so a leaked one is recognisable (e.g. by secret scanners).
TOKEN_PREFIX = "rls_"
#: Characters of the token kept in clear (prefix included) to tell tokens apart.
VISIBLE_CHARS = 12
#: ``last_used_at`` is written at most this often per token.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def token_digest(token: str) -> str:
    """SHA-256 hex digest of ``token`` (what the database stores and looks tokens up by)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def usable(self, now=None):
        """Tokens that are neither revoked nor expired, whose user is active."""
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True, user__is_active=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class ApiToken(models.Model):
    """One personal API token of one user."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. 'training cluster'.")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    visible = models.CharField(max_length=VISIBLE_CHARS, editable=False, help_text="The token's first characters.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires.")
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.visible}…)"

    @classmethod
    def issue(cls, user, name: str, expires_at=None) -> tuple[ApiToken, str]:
        """Create a token for ``user``.

        Returns:
            ``(row, token)``: the token text is returned only here, never stored.
        """
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = cls.objects.create(
            user=user, name=name, digest=token_digest(token), visible=token[:VISIBLE_CHARS], expires_at=expires_at
        )
        return row, token

    @classmethod
    def authenticate(cls, token: str):
        """The user a usable token belongs to (and records the use), or None for an unknown, revoked or
        expired token or an inactive user."""
        if not token or not token.startswith(TOKEN_PREFIX):
            return None
        row = cls.objects.usable().select_related("user").filter(digest=token_digest(token)).first()
        if row is None:
            return None
        row.touch()
        return row.user

    def touch(self, now=None) -> None:
        """Record a use, at most once per :data:`LAST_USED_RESOLUTION`."""
        now = now or timezone.now()
        if self.last_used_at is None or now - self.last_used_at >= LAST_USED_RESOLUTION:
            try:  # best effort: a busy database must not fail the request the token is for
                with transaction.atomic():
                    ApiToken.objects.filter(pk=self.pk).update(last_used_at=now)
            except DatabaseError:
                logger.warning("could not record the use of API token %s (database busy)", self.pk)
                return
            self.last_used_at = now

    def revoke(self) -> None:
        """Stop the token working from now on."""
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])

    @property
    def state(self) -> str:
        """``active``, ``revoked`` or ``expired``."""
        if self.revoked_at:
            return "revoked"
        if self.expires_at and self.expires_at <= timezone.now():
            return "expired"
        return "active"
