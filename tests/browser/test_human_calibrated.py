"""A viewer reads the audit dashboard's human-calibrated estimates of a run with planted answers:

* alignment: the judge is right on 3 pairs in 4 everywhere, sure of itself (P = 0.9) when right and not (0.6)
  when wrong; its own confidence claims 82.5%, 20 audited pairs say 75%, and prediction-powered inference keeps
  75% with an interval as narrow as 38 human labels would give (Angelopoulos et al. 2023);
* the evaluation: a length-biased judge (the tuned answer wins 50% at equal length, 80% when 60 characters
  longer, 20% when shorter) gives a raw win rate of 62%; the length-controlled win rate (Dubois et al. 2024)
  returns to the planted 50%, next to the raw figure, and the PPI row corrects the AI's figure with the audited
  evaluation pairs, next to the plain AI figure and the human-only one.
"""
from __future__ import annotations

import math

import pytest

from runs.models import AuditItem, Comparison
from tests import factories
from tests.browser.conftest import login
from training.human_calibrated import ppi_mean
from training.panel import verdict_judge_id

pytestmark = pytest.mark.browser

#: Length difference (characters) of the tuned answer over the reference, and how often the judge picks it.
LENGTH_DIFFERENCE = 60
REFERENCE_LENGTH = 100
#: (length difference, pairs, of which the judge calls the tuned answer better)
EVAL_DESIGN = [(0, 20, 10), (LENGTH_DIFFERENCE, 60, 48), (-LENGTH_DIFFERENCE, 20, 4)]


def _text(tag: str, length: int) -> str:
    return (tag + "x" * length)[:length]


def planted_run():
    """The run described in the module docstring; returns ``(run, expected alignment, expected eval PPI)``."""
    run = factories.make_run(prompt_set=factories.make_prompt_set(n=1), stages=("label", "evaluate"))
    honest = run.constitution_version.principles.get(name="Honest")
    judge_id = verdict_judge_id(run.run_config.judge)
    auditor = factories.make_user(roles=("auditors",))
    # training pairs: 20 audited at random, 60 judged only; right with P 0.9, wrong with P 0.6, 3 in 4 right
    for i in range(80):
        right = i % 4 != 3
        comparison = factories.make_comparison(run, texts=(f"answer a{i}", f"answer b{i}"))
        judgment = factories.make_judgment(comparison, honest, p_a=0.9 if right else 0.6, judge_id=judge_id)
        if i < 20:
            AuditItem.objects.create(run=run, comparison=comparison, judgment=judgment, stratum="random")
            factories.make_label(comparison, "A" if right else "B", auditor=auditor)
    alignment = ppi_mean([1.0] * 15 + [0.0] * 5, [0.9] * 15 + [0.6] * 5, [0.9] * 45 + [0.6] * 15)
    # evaluation pairs (A = tuned): every 4th audited; humans overrule half the judge's wins of the longer answer
    y, yhat, unlabelled = [], [], []
    i = longer_wins = 0
    for difference, pairs, wins in EVAL_DESIGN:
        for k in range(pairs):
            tuned_wins = k < wins
            comparison = factories.make_comparison(run, texts=(_text(f"t{i} ", REFERENCE_LENGTH + difference),
                                                               _text(f"r{i} ", REFERENCE_LENGTH)))
            Comparison.objects.filter(pk=comparison.pk).update(purpose="eval")
            factories.make_judgment(comparison, honest, p_a=0.9 if tuned_wins else 0.1, judge_id=judge_id)
            ai = 1.0 if tuned_wins else 0.0
            if i % 4 == 0:
                human = ai
                if difference > 0 and tuned_wins:
                    human = float(longer_wins % 2)
                    longer_wins += 1
                factories.make_label(comparison, "A" if human else "B", auditor=auditor)
                y.append(human)
                yhat.append(ai)
            else:
                unlabelled.append(ai)
            i += 1
    return run, alignment, ppi_mean(y, yhat, unlabelled)


def pct(value: float) -> str:
    return f"{value * 100:.1f}%"


@pytest.mark.django_db(transaction=True)
def test_dashboard_puts_ppi_beside_the_ai_and_human_figures_and_the_length_controlled_win_rate(
        page, live_server, viewer):
    run, alignment, win_rate = planted_run()
    assert (alignment.value, alignment.ai_value, round(alignment.effective_n)) == (0.75, 0.825, 38)
    assert win_rate.n_labelled == 25 and win_rate.value < win_rate.ai_value == 0.62  # humans overrule length

    login(page, live_server.url, viewer.username)
    page.goto(f"{live_server.url}/runs/{run.pk}/audit/")
    # the audited training answers are equally long: the length-controlled alignment, beside the plain one, is it
    overall = page.locator("#figures-overall")
    assert overall.locator("tbody tr").nth(1).get_attribute("data-figure") == "alignment_length_controlled"
    for figure in ("alignment", "alignment_length_controlled"):
        assert overall.locator(f'tr[data-figure="{figure}"] td.value').inner_text() == "75.0%"
        assert overall.locator(f'tr[data-figure="{figure}"] td.n').inner_text() == "20"
    card = page.locator("#human-calibrated")
    assert "Angelopoulos et al. 2023" in card.inner_text()

    def cells(estimate: str) -> list[str]:
        return [t.strip() for t in card.locator(f'tr[data-estimate="{estimate}"] td').all_inner_texts()]

    row = cells("alignment")
    assert row[1].startswith("82.5%")  # the judge's own confidence, biased upwards
    assert row[2] == f"75.0% [{pct(alignment.human_low)}, {pct(alignment.human_high)}]"
    assert row[3] == f"75.0% [{pct(alignment.low)}, {pct(alignment.high)}]"
    assert row[4:] == ["20 / 60", "38"]  # 20 human labels worth 38
    assert alignment.high - alignment.low < alignment.human_high - alignment.human_low

    row = cells("win_rate")
    assert row[1] == "62.0%"
    assert row[2] == f"{pct(win_rate.human_value)} [{pct(win_rate.human_low)}, {pct(win_rate.human_high)}]"
    assert row[3] == f"{pct(win_rate.value)} [{pct(win_rate.low)}, {pct(win_rate.high)}]"
    assert row[4:] == ["25 / 75", f"{win_rate.effective_n:.0f}"]

    lc = card.locator('tr[data-estimate="length_controlled"]')
    assert lc.locator("strong").inner_text() == "50.0%"  # back at the planted preference at equal length
    text = lc.inner_text()
    low, high = (float(part.rstrip("%")) for part in text.split("[")[1].split("]")[0].split(", "))
    assert low < 50 < high
    # the fitted length weight: logit(0.8) / tanh(60 / sd), sd of the differences = 48 characters
    assert "raw 62.0%" in text and f"length weight {math.log(4) / math.tanh(1.25):.2f}" in text
    assert "n=100" in text
