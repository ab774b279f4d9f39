"""Build the POST body of the constitution editor form (name, template, principle and example formsets)."""
from __future__ import annotations

from training.judge_prompt import DEFAULT_TEMPLATE


def editor_post(name="Rules", principles=(), examples=(), template=DEFAULT_TEMPLATE, base=None, note="",
                description="", order=None, delete=()) -> dict:
    """``principles``: dicts of principle fields; ``order``: the ORDER value per form (default 1..n);
    ``delete``: form indexes to mark removed."""
    data = {
        "name": name, "description": description, "judge_template": template, "note": note,
        "base_version": "" if base is None else str(base),
        "principles-TOTAL_FORMS": str(len(principles)), "principles-INITIAL_FORMS": "0",
        "principles-MIN_NUM_FORMS": "0", "principles-MAX_NUM_FORMS": "1000",
        "examples-TOTAL_FORMS": str(len(examples)), "examples-INITIAL_FORMS": "0",
        "examples-MIN_NUM_FORMS": "0", "examples-MAX_NUM_FORMS": "1000",
    }
    for i, p in enumerate(principles):
        prefix = f"principles-{i}-"
        data.update({
            prefix + "name": p["name"], prefix + "comparison": p["comparison"],
            prefix + "critique_request": p.get("critique_request", ""),
            prefix + "revision_request": p.get("revision_request", ""),
            prefix + "weight": str(p.get("weight", 1.0)), prefix + "category": p.get("category", "custom"),
            prefix + "ORDER": str(order[i] if order else i + 1),
        })
        if p.get("enabled", True):
            data[prefix + "enabled"] = "on"
        if i in delete:
            data[prefix + "DELETE"] = "on"
    for i, ex in enumerate(examples):
        data.update({f"examples-{i}-{k}": v for k, v in ex.items()})
    return data
