"""The runs side of constitution lint: every judgment made under a version's principles, read from the
database and passed to :func:`training.constitution_lint.lint`; registered with :mod:`constitutions.lint`."""
from __future__ import annotations

from django.urls import reverse
from django.utils.http import urlencode

from runs.audit.queries import human_majority
from runs.models import Comparison, Judgment, Run
from training.constitution_lint import LintRow, lint

#: Flag kind -> pair-browser filters that show the pairs behind it (a duplicate: the pairs themselves).
FLAG_FILTERS = {"noise": {"consistent": "no"}, "never_decides": {"verdict": "tie"}, "duplicate": {}}
#: The most pairs a duplicate flag's link names (the pair browser's ``comparisons`` filter takes 1000).
MAX_LINKED_PAIRS = 1000


def _showing(flag: dict, principle: int, judgments: list[dict]) -> set[int]:
    """The comparisons whose judgments show ``flag`` of ``principle``: its position-inconsistent judgments
    (noise), its ties (never decides), or the pairs on which it and the other principle gave the same decisive
    verdict (duplicate)."""
    mine = [j for j in judgments if j["principle_id"] == principle]
    if flag["kind"] == "noise":
        return {j["comparison_id"] for j in mine if j["position_consistent"] is False}
    if flag["kind"] == "never_decides":
        return {j["comparison_id"] for j in mine if j["verdict"] == "tie"}
    if flag["kind"] == "duplicate":
        other = {j["comparison_id"]: j["verdict"] for j in judgments if j["principle_id"] == flag["other"]}
        return {j["comparison_id"] for j in mine if j["verdict"] in ("A", "B") and other.get(j["comparison_id"])
                == j["verdict"]}
    return {j["comparison_id"] for j in mine}


def _flag_url(flag: dict, principle: int, judgments: list[dict], run_of: dict[int, int],
              order: dict[int, tuple]) -> str:
    """The pair browser of the latest run holding pairs that show ``flag``, filtered to them; "" when none."""
    shown = _showing(flag, principle, judgments)
    runs = {run_of[c] for c in shown}
    if not runs:
        return ""
    run_id = max(runs, key=lambda pk: order[pk])
    if flag["kind"] == "duplicate":  # both principles' verdicts on the pairs where they agreed
        ids = sorted(c for c in shown if run_of[c] == run_id)[:MAX_LINKED_PAIRS]
        query = {"comparisons": ",".join(map(str, ids))}
    else:
        query = {"principle": principle, **FLAG_FILTERS.get(flag["kind"], {})}
    return reverse("runs:pairs", args=[run_id]) + "?" + urlencode(query)


def version_lint(version) -> dict[int, dict]:
    """``{principle id: {"figures", "flags"}}`` for ``version``, from the judgments of every run that used it;
    each flag linked to the pair browser of the latest run holding pairs that show it, filtered to those pairs
    (a newer run that has not judged them yet does not empty the link)."""
    principles = dict(version.principles.order_by("position").values_list("pk", "name"))
    judgments = list(
        Judgment.objects.filter(principle_id__in=principles).exclude(verdict="")
        .values("principle_id", "comparison_id", "comparison__run_id", "verdict", "p_a", "position_consistent")
    )
    if not judgments:
        return {}
    humans = human_majority(Comparison.objects.filter(pk__in={j["comparison_id"] for j in judgments}))
    rows = [LintRow(j["principle_id"], j["comparison_id"], j["verdict"], j["p_a"], j["position_consistent"],
                    humans.get(j["comparison_id"], "")) for j in judgments]
    run_of = {j["comparison_id"]: j["comparison__run_id"] for j in judgments}
    order = {pk: (created, pk) for pk, created in
             Run.objects.filter(pk__in=set(run_of.values())).values_list("pk", "created_at")}
    result = {}
    for pid, item in lint(rows, list(principles), names=principles).items():
        flags = [{**flag, "url": _flag_url(flag, pid, judgments, run_of, order)} for flag in item.flags]
        result[pid] = {
            "figures": {"n": item.n, "position_consistency": item.position_consistency, "tie_rate": item.tie_rate,
                        "confidence_spread": item.confidence_spread, "agreement": item.agreement},
            "flags": flags,
        }
    return result
