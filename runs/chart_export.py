"""The numbers behind a chart panel of :func:`runs.charts.chart_data`, as CSV rows."""
from __future__ import annotations

CSV_FIELDS = ("panel", "run", "series", "x", "minutes", "y")


def panel_rows(data: dict, panel_id: str) -> list[dict]:
    """The numbers behind one panel of :func:`chart_data` as CSV rows (:data:`CSV_FIELDS`): one row per
    plotted point (``x`` the step, KL or category; ``minutes`` since the run's first metric where known);
    ``panel_id="scalars"`` gives the single-value metrics. Band edges are named ``<series> upper/lower``.

    Raises:
        KeyError: no panel ``panel_id`` among the runs' panels.
    """
    if panel_id == "scalars":
        return [{"panel": "scalars", "run": r["run"], "series": f"{r['stage']}/{r['name']}", "x": r["step"],
                 "minutes": "", "y": r["value"]} for r in data["scalars"]]
    panel = next((p for p in data["panels"] if p["id"] == panel_id), None)
    if panel is None:
        raise KeyError(panel_id)
    rows = []
    for trace in panel["figure"]["data"]:
        name = trace.get("name") or ""
        meta = trace.get("meta") or {}
        if meta.get("band") == "upper":
            name = "upper band"
        run_id = meta.get("run", "")
        minutes = trace.get("customdata") or []
        for i, (x, y) in enumerate(zip(trace.get("x", []), trace.get("y", []), strict=False)):
            rows.append({"panel": panel_id, "run": run_id, "series": name, "x": x,
                         "minutes": minutes[i] if i < len(minutes) and minutes[i] is not None else "", "y": y})
    return rows
