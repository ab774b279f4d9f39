"""A panel of three stub judges with planted biases, each a real OpenAI-compatible server on 127.0.0.1
(:class:`benchmarks.fake_openai_server.FakeChatServer` replaying a rule), and pairs built so that every figure
of the panel can be worked out by hand.

The judges (the rule sees the response shown first and the one shown second):

* ``first``: always prefers the response shown first. Asked in both orders it picks A, then B, so its P(A) is
  0.5: a tie on every pair, never position consistent;
* ``longer``: prefers the longer response (consistent);
* ``right``: prefers the response that says "right" (the humans' choice here; consistent).

The four kinds of pair (response A, response B), the "right" one the humans' choice:

====  ======================================  =====================================  ======  =====  =====
kind  A                                       B                                      longer  right  human
====  ======================================  =====================================  ======  =====  =====
AA    "right, and a much longer answer"       "short"                                A       A      A
AB    "a much longer answer, but a wrong one" "right"                                A       B      B
BB    "bad"                                   "right, and a much longer answer too"  B       B      B
BA    "right"                                 "a much longer answer, but a wrong one" B      A      A
====  ======================================  =====================================  ======  =====  =====

So the judges' verdicts per kind are (first, longer, right): AA (tie, A, A), AB (tie, A, B), BB (tie, B, B),
BA (tie, B, A); the majority verdict is A, tie, B, tie; the mean P(A) is (0.5 + 1 + 1) / 3 = 5/6 on AA,
0.5 on AB and BA, 1/6 on BB.
"""
from __future__ import annotations

import contextlib

from benchmarks.fake_openai_server import FakeChatServer
from runs.models import StageRun
from tests import factories

KINDS = {
    "AA": ("right, and a much longer answer", "short"),
    "AB": ("a much longer answer, but a wrong one", "right"),
    "BB": ("bad", "right, and a much longer answer too"),
    "BA": ("right", "a much longer answer, but a wrong one"),
}
HUMAN = {"AA": "A", "AB": "B", "BB": "B", "BA": "A"}
#: The judges' verdicts per kind, in panel order (first, longer, right).
VERDICTS = {"AA": ("tie", "A", "A"), "AB": ("tie", "A", "B"), "BB": ("tie", "B", "B"), "BA": ("tie", "B", "A")}

RULES = {
    "first": lambda prompt, first, second: "A",
    "longer": lambda prompt, first, second: "A" if len(first) > len(second) else "B",
    "right": lambda prompt, first, second: "A" if "right" in first else "B",
}


@contextlib.contextmanager
def running_panel():
    """``{"first": server, "longer": server, "right": server}``, running (a test module's fixture wraps it)."""
    with contextlib.ExitStack() as stack:
        yield {name: stack.enter_context(FakeChatServer(judge=rule)) for name, rule in RULES.items()}


def judge_entry(server) -> dict:
    """A panel entry (or the run's judge) calling ``server``."""
    return {"backend": "openai", "base_url": server.url, "model": "judge", "max_retries": 0, "max_reasks": 0}


def panel_config(servers, aggregation: str = "majority", **judge) -> dict:
    """The run's judge config: ``first`` is the run's judge, ``longer`` and ``right`` its panel."""
    return {"judge": {**judge_entry(servers["first"]), "panel_aggregation": aggregation,
                      "panel": [judge_entry(servers["longer"]), judge_entry(servers["right"])], **judge}}


def make_panel_run(servers, kinds=("AA", "AB", "BB", "BA"), aggregation: str = "majority", **judge):
    """A run with the label stage, one comparison per kind (in that order) and the panel's config.

    Returns:
        ``(run, label StageRun, {kind: comparison})``.
    """
    run = factories.make_run(stages=("label",), config=panel_config(servers, aggregation, **judge))
    prompt = run.prompt_set.prompts.first()
    comparisons = {kind: factories.make_comparison(run, prompt, texts=KINDS[kind]) for kind in kinds}
    return run, StageRun.objects.get(run=run, stage="label"), comparisons
