"""Plotly figures of the audit dashboard (plain JSON, drawn by plotly.js served from static files)."""
from __future__ import annotations

from rlaif_site.untrusted import plotly_safe
from runs.audit.queries import COUNTED

LAYOUT = {"margin": {"l": 60, "r": 20, "t": 40, "b": 50}, "height": 320, "font": {"size": 12}, "autosize": True}


def _empty(figure: dict, message: str = "No human labels yet") -> dict:
    """``figure`` with its axes hidden and ``message`` in the middle: nothing to plot yet."""
    layout = {**figure["layout"], "xaxis": {"visible": False}, "yaxis": {"visible": False}, "shapes": [],
              "annotations": [{"text": message, "showarrow": False, "xref": "paper", "yref": "paper",
                               "x": 0.5, "y": 0.5, "font": {"size": 14, "color": "#888"}}]}
    return {"data": [], "layout": layout}


def _bars(report: dict, figure: str) -> tuple[list, list, list, list, list]:
    names, values, plus, minus, hover = [], [], [], [], []
    for name, section in report["principles"].items():
        estimate = section["figures"][figure]
        if estimate["value"] is None:
            continue
        names.append(name)
        values.append(estimate["value"])
        plus.append(estimate["high"] - estimate["value"])
        minus.append(estimate["value"] - estimate["low"])
        hover.append(f"{estimate['value']:.3f} [{estimate['low']:.3f}, {estimate['high']:.3f}], n={estimate['n']}")
    return names, values, plus, minus, hover


def per_principle(report: dict) -> dict:
    """Alignment and kappa per principle as bars with their 95% intervals."""
    data = []
    for figure, label in (("alignment", "AI labeler alignment"), ("kappa", "Cohen's kappa")):
        names, values, plus, minus, hover = _bars(report, figure)
        data.append({
            "type": "bar", "name": label, "x": names, "y": values, "hovertext": hover, "hoverinfo": "text+name",
            "error_y": {"type": "data", "symmetric": False, "array": plus, "arrayminus": minus},
        })
    figure = {"data": data, "layout": {**LAYOUT, "title": {"text": "Agreement per principle (95% CI)"},
                                       "barmode": "group", "yaxis": {"range": [-0.2, 1]},
                                       "legend": {"orientation": "h", "yref": "container", "y": 0,
                                                  "yanchor": "bottom"}}}
    return figure if any(trace["x"] for trace in data) else _empty(figure)


def reliability(section: dict) -> dict:
    """Reliability diagram: mean P(A) per bin against the share of humans who chose A; marker size ~ n."""
    bins = section["calibration_bins"]
    ece = section["figures"]["ece"]
    title = "Calibration" if ece["value"] is None else (
        f"Calibration: ECE {ece['value']:.3f} [{ece['low']:.3f}, {ece['high']:.3f}], n={ece['n']}"
    )
    figure = {
        "data": [
            {"type": "scatter", "mode": "lines", "x": [0, 1], "y": [0, 1], "name": "perfect",
             "line": {"dash": "dot", "color": "#999"}},
            {"type": "scatter", "mode": "lines+markers", "name": "judge",
             "x": [b["mean_p"] for b in bins], "y": [b["share_a"] for b in bins],
             "text": [f"n={b['n']}" for b in bins],
             "marker": {"size": [6 + min(20, b["n"]) for b in bins]}},
        ],
        "layout": {**LAYOUT, "title": {"text": title},
                   "xaxis": {"title": {"text": "judge P(A preferred)"}, "range": [0, 1]},
                   "yaxis": {"title": {"text": "share of humans choosing A"}, "range": [0, 1]}},
    }
    return figure if bins else _empty(figure)


def confusion(section: dict) -> dict:
    """Heatmap of human label (rows) against AI verdict (columns)."""
    figure = {
        "data": [{"type": "heatmap", "z": section["confusion"], "x": [f"AI {c}" for c in COUNTED],
                  "y": [f"human {c}" for c in COUNTED], "colorscale": "Blues", "reversescale": True,
                  "texttemplate": "%{z}",
                  "showscale": False}],
        "layout": {**LAYOUT, "title": {"text": "Confusion matrix"}, "yaxis": {"autorange": "reversed"}},
    }
    return figure if any(any(row) for row in section["confusion"]) else _empty(figure)


def length_bias(section: dict) -> dict:
    """Share preferring the longer response: judge next to humans, with 95% intervals."""
    names, values, plus, minus = [], [], [], []
    for figure, label in (("ai_prefers_longer", "judge"), ("human_prefers_longer", "humans")):
        estimate = section["figures"][figure]
        if estimate["value"] is None:
            continue
        names.append(f"{label} (n={estimate['n']})")
        values.append(estimate["value"])
        plus.append(estimate["high"] - estimate["value"])
        minus.append(estimate["value"] - estimate["low"])
    figure = {
        "data": [{"type": "bar", "x": names, "y": values, "marker": {"color": ["#3355cc", "#1a7f37"]},
                  "error_y": {"type": "data", "symmetric": False, "array": plus, "arrayminus": minus}}],
        "layout": {**LAYOUT, "title": {"text": "Length bias: prefers the longer response"},
                   "yaxis": {"range": [0, 1]},
                   "shapes": [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": 0.5, "y1": 0.5,
                               "line": {"dash": "dot", "color": "#999"}}]},
    }
    return figure if names else _empty(figure, "No decisive labels yet")


def dashboard_figures(report: dict) -> dict:
    """Every figure of the dashboard, keyed by the element id it is drawn into."""
    overall = report["overall"]
    # Principle names are user text that plotly would render as HTML: escape every string.
    return plotly_safe({
        "chart-principles": per_principle(report),
        "chart-reliability": reliability(overall),
        "chart-confusion": confusion(overall),
        "chart-length": length_bias(overall),
    })
