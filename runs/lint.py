"""The runs side of constitution lint: every judgment made under a version's principles, read from the
database and passed to :func:`training.constitution_lint.lint`; registered with :mod:`constitutions.lint`."""
from __future__ import annotations

from django.urls import reverse
from django.utils.http import urlencode

from runs.audit.queries import human_majority
from runs.models import Comparison, Judgment, Run
from training.constitution_lint import LintRow, lint

#: Flag kind -> pair-browser filters that show the pairs behind it.
FLAG_FILTERS = {"noise": {"consistent": "no"}, "never_decides": {"verdict": "tie"}, "duplicate": {}}


def version_lint(version) -> dict[int, dict]:
    """``{principle id: {"figures", "flags"}}`` for ``version``, each flag linked to the pair browser of the
    latest run that used the version, filtered to the pairs that show it."""
    principles = list(version.principles.order_by("position").values_list("pk", flat=True))
    judgments = list(
        Judgment.objects.filter(principle_id__in=principles).exclude(verdict="")
        .values("principle_id", "comparison_id", "verdict", "p_a", "position_consistent")
    )
    if not judgments:
        return {}
    humans = human_majority(Comparison.objects.filter(pk__in={j["comparison_id"] for j in judgments}))
    rows = [LintRow(j["principle_id"], j["comparison_id"], j["verdict"], j["p_a"], j["position_consistent"],
                    humans.get(j["comparison_id"], "")) for j in judgments]
    latest = Run.objects.filter(constitution_version=version).order_by("-created_at").values_list("pk", flat=True)
    run_id = latest.first()
    result = {}
    for pid, item in lint(rows, principles).items():
        flags = []
        for flag in item.flags:
            url = ""
            if run_id is not None:
                url = reverse("runs:pairs", args=[run_id]) + "?" + urlencode(
                    {"principle": pid, **FLAG_FILTERS.get(flag["kind"], {})})
            flags.append({**flag, "url": url})
        result[pid] = {
            "figures": {"n": item.n, "position_consistency": item.position_consistency, "tie_rate": item.tie_rate,
                        "confidence_spread": item.confidence_spread, "agreement": item.agreement},
            "flags": flags,
        }
    return result
