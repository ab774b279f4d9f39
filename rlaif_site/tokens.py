"""The "API tokens" page of the logged-in user: create a token (shown once), list and revoke their tokens."""
from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from rlaif_site.models import ApiToken
from rlaif_site.untrusted import validate_no_bidi_controls

EXPIRY_CHOICES = [("", "Never"), ("7", "7 days"), ("30", "30 days"), ("90", "90 days"), ("365", "1 year")]


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, validators=[validate_no_bidi_controls],
                           help_text="What the token is for, e.g. 'training cluster'.")
    expires_in_days = forms.TypedChoiceField(choices=EXPIRY_CHOICES, coerce=int, empty_value=None, required=False,
                                             label="Expires")


def token_list(request):
    """The user's tokens; a POST creates one and shows its text once."""
    new_token = None
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        days = form.cleaned_data["expires_in_days"]
        expires = timezone.now() + timedelta(days=days) if days else None
        row, new_token = ApiToken.issue(request.user, form.cleaned_data["name"], expires_at=expires)
        form = TokenForm()
    tokens = ApiToken.objects.filter(user=request.user)
    return render(request, "rlaif_site/tokens.html", {"form": form, "tokens": tokens, "new_token": new_token},
                  status=400 if form.errors else 200)


@require_POST
def token_revoke(request, pk: int):
    """Revoke one of the user's own tokens (another user's token is a 404)."""
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    token.revoke()
    messages.success(request, f"Revoked the token {token.name!r}; it no longer works.")
    return redirect("api_tokens")
