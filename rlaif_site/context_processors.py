"""Template context shared by every page."""
from rlaif_site.roles import AUDITORS, AUTHORS, OPERATORS, REVIEWERS, has_role


def roles(request):
    """Expose ``is_author``/``is_operator``/``is_auditor``/``is_reviewer`` so templates show only usable actions."""
    user = getattr(request, "user", None)
    return {
        "is_author": has_role(user, AUTHORS),
        "is_operator": has_role(user, OPERATORS),
        "is_auditor": has_role(user, AUDITORS),
        "is_reviewer": has_role(user, REVIEWERS),
    }
