"""Side-by-side diff of two constitution versions, made by :class:`difflib.HtmlDiff` on a readable text
rendering of each version (principles in order with all their fields, the judge template, the examples)."""
from __future__ import annotations

import difflib

from constitutions.models import ConstitutionVersion


def version_lines(version: ConstitutionVersion) -> list[str]:
    """A readable, line-oriented rendering of a version's content (what :func:`version_diff` compares)."""
    principles = version.principle_dicts()
    lines = [f"Principles ({len(principles)})"]
    for p in principles:  # no position numbers: removing one principle should not mark all later ones changed
        state = "enabled" if p["enabled"] else "disabled"
        lines.append(f"* {p['name']}  [{p['category']}, weight {float(p['weight']):g}, {state}]")
        for label, key in (("Comparison", "comparison"), ("Critique request", "critique_request"),
                           ("Revision request", "revision_request")):
            if p[key]:
                text_lines = p[key].splitlines() or [""]
                lines.append(f"   {label}: {text_lines[0]}")
                lines.extend(f"      {line}" for line in text_lines[1:])
    lines += ["", "Judge template"]
    lines.extend(f"   {line}" for line in version.judge_template.splitlines())
    examples = version.few_shot_examples or []
    lines += ["", f"Few-shot examples ({len(examples)})"]
    for number, ex in enumerate(examples, start=1):
        lines.append(f"{number}. preferred {ex.get('preferred', '')}")
        for key in ("prompt", "response_a", "response_b", "rationale"):
            text_lines = str(ex.get(key, "")).splitlines() or [""]
            lines.append(f"   {key}: {text_lines[0]}")
            lines.extend(f"      {line}" for line in text_lines[1:])
    return lines


def version_diff(old: ConstitutionVersion, new: ConstitutionVersion, *, context: bool = False) -> str:
    """An HTML table showing ``old`` and ``new`` side by side with changes highlighted.

    The table comes from :meth:`difflib.HtmlDiff.make_table`, which HTML-escapes every line of text (``&``,
    ``<``, ``>``) before adding its own markup, so the result may be inserted in a page as is.

    Args:
        context: show only changed lines with a few lines around them, instead of the whole text.
    """
    differ = difflib.HtmlDiff(tabsize=4, wrapcolumn=72)
    return differ.make_table(
        version_lines(old), version_lines(new), fromdesc=f"v{old.number}", todesc=f"v{new.number}",
        context=context, numlines=3,
    )
