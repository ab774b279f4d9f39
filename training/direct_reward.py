"""Direct RLAIF: the run's AI judge scores the policy's rollouts during RL, with no reward model in between.

Lee et al. 2023 ("RLAIF vs. RLHF", arXiv 2309.00267, section 2.3) let the LLM judge score each RL sample
directly ("d-RLAIF") and found it beats distilling the judge's preferences into a reward model first. With
``policy.reward_source: judge`` the policy stage hands RLOO/GRPO a :class:`JudgeReward` instead of a trained
reward model's scorer.

**Pairwise within each group.** Every judge backend answers the pairwise question of the labeling protocol
(:meth:`training.judges.base.Judge.score`: P(the response shown as A is preferred)), so the reward is built from
it: RLOO and GRPO sample ``policy.num_generations`` rollouts per prompt (a group), each rollout is compared with
every other rollout of its group, and its reward is its mean probability of winning,

    r_i = mean_{j != i} P(i preferred over j)   (in [0, 1]).

The comparisons go through :func:`training.labeling.label_tasks`, so everything the label stage does applies:
both orders averaged unless the backend is order-invariant (the likelihood judge is asked once),
self-consistency, the request cache, cost accounting and the budget (a paid judge reserves each call against
``judge.budget`` through the ledger its caller sets). A group of ``n`` rollouts costs ``n (n - 1) / 2``
comparisons per principle (times 2 orders): 1 for the default ``num_generations`` of 2, 6 for 4.

The rewards are left in [0, 1], not z-scored: RLOO's leave-one-out baseline and GRPO's group normalisation
already centre them per group. Because each comparison gives ``p`` to one side and ``1 - p`` to the other, a
group's rewards always average 0.5: the signal is their spread within the group. The logged
``judge_margin`` (mean ``|2 P - 1|`` over the step's judgments) says how decisively the judge separates the
rollouts; it falls as they become alike.

**Principles.** Each prompt's principle(s) come from :func:`training.labeling.select_principles` with the
prompt's content hash as the draw's key (and ``judge.seed``): a prompt is always judged under the same
principle(s), whichever step samples it. Under ``judge.principle_sampling: all`` every comparison is asked
under each enabled principle and the probabilities are averaged.

**Failures.** A comparison the judge could not answer (after the backend's retries) counts 0.5 for both sides,
neutral, and is counted (``judge_failed``). Once :data:`MIN_JUDGMENTS` judgments are made, more than
``judge.max_failed_share`` of them failing stops training with :class:`JudgeRewardError`, as does an endpoint
whose circuit breaker opened, or a spent budget.

Per call the reward logs, through TRL's ``log_metric`` (so they reach the run's charts with the step's other
metrics): ``judge_reward`` (mean reward), ``judge_failed`` (failed judgments in the step) and ``judge_margin``.

**Pointwise** (``policy.judge_scoring: pointwise``, the paper's own d-RLAIF): each rollout is scored alone from
1 to 10 under its prompt's principle(s), the score read as the expectation over the score tokens' probabilities
and rescaled to [-1, 1] (:mod:`training.pointwise`); one judge pass per rollout and principle instead of
``n (n - 1) / 2`` comparisons per group. Only backends that read the score tokens' log-probabilities offer it
(``Judge.pointwise``: the ``transformers`` judge); a failed score is a neutral 0 and is counted like a failed
comparison. Scores are not cached (the backend is local and free).
"""
from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Mapping, Sequence

from training.chat import Conversation
from training.config import JudgeConfig
from training.judge_prompt import DEFAULT_TEMPLATE
from training.judges.base import Judge, JudgeTask
from training.judges.budget import BUDGET_REFUSED
from training.labeling import JudgeCache, label_tasks, select_principles
from training.progress import NullReporter, Reporter

#: The reward of a rollout no comparison decided (a failed judgment, or a group of one).
NEUTRAL = 0.5
#: The reward of a rollout whose pointwise score failed (the middle of [-1, 1]).
NEUTRAL_POINT = 0.0
#: The failed share is checked once this many judgments were made (earlier, one failure is a large share).
MIN_JUDGMENTS = 16
#: The name TRL logs the reward under (``rewards/judge/mean``).
REWARD_NAME = "judge"


class JudgeRewardError(RuntimeError):
    """The judge cannot go on scoring rollouts: too many failed judgments, its endpoint stopped answering, or
    the budget is spent. Training stops; its last checkpoint is kept and a resume continues from it."""


class _LogOnly(NullReporter):
    """Forwards log lines only: the policy stage's progress is its steps, not the judge's comparisons, and a
    cancel is handled at the step's end by the trainer's callback (with a checkpoint)."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter

    def log(self, line: str) -> None:
        self.reporter.log(line)


def prompt_key(conversation: Conversation) -> str:
    """A prompt's content hash: it groups a batch's rollouts by prompt and draws the prompt's principle."""
    blob = json.dumps(conversation, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _conversation(prompt) -> Conversation:
    """The prompt TRL passes (chat messages, or a ``Human: …\\n\\nAssistant:`` transcript for a base model) as
    the conversation the judge renders: the transcript's final marker goes, its turns become messages."""
    if not isinstance(prompt, str):
        return [{"role": m["role"], "content": m["content"]} for m in prompt]
    text = prompt.rstrip()
    if text.endswith("Assistant:"):
        text = text[: -len("Assistant:")].rstrip()
    if not text.startswith(("Human:", "System:")):
        return text
    roles = {"Human": "user", "Assistant": "assistant", "System": "system"}
    messages = []
    for chunk in text.split("\n\n"):
        head, sep, rest = chunk.partition(":")
        if sep and head in roles:
            messages.append({"role": roles[head], "content": rest[1:] if rest.startswith(" ") else rest})
        elif messages:  # a blank line inside a turn
            messages[-1]["content"] += "\n\n" + chunk
    return messages


def _text(completion) -> str:
    """A rollout's text: TRL passes a string, or (conversational) a list of assistant messages."""
    if isinstance(completion, str):
        return completion
    return "".join(m.get("content") or "" for m in completion)


class JudgeReward:
    """A TRL reward function ``f(prompts=, completions=, **kw) -> list[float]`` backed by a judge (see the
    module docstring for the pairwise scheme).

    Args:
        judge: any backend from :func:`training.judges.build_judge`; a paid one with its ``ledger`` set.
        config: the run's judge config (protocol, budget, ``max_failed_share``, principle sampling and seed).
        principles: the constitution version's principles (dicts with ``id``, ``comparison``, ``weight``,
            ``enabled``).
        template, examples, allow_ties: the constitution version's judge template, few-shot examples and tie
            setting.
        cache: the request cache (:class:`training.labeling.JudgeCache`), or None.
        reporter: where log lines go.
        spent: what this run already paid the judge (counts towards ``judge.budget``).
        while_waiting: called in the caller's thread while a batch is scored and after each (e.g. to persist a
            paid judge's ledger events).
        scoring: ``pairwise`` (each rollout against the rest of its group) or ``pointwise`` (each rollout scored
            alone, 1-10; needs a judge with ``pointwise``).

    Raises:
        ValueError: an unknown ``scoring``, or ``pointwise`` with a judge that cannot score single responses.

    Attributes:
        judged, failed: judgments made so far, and how many of them failed.
        spent: the judge's cost so far (``spent`` included).
    """

    __name__ = REWARD_NAME

    def __init__(
        self,
        judge: Judge,
        config: JudgeConfig,
        principles: Sequence[Mapping],
        *,
        template: str = DEFAULT_TEMPLATE,
        examples: Sequence[Mapping] = (),
        allow_ties: bool = False,
        cache: JudgeCache | None = None,
        reporter: Reporter | None = None,
        spent: float = 0.0,
        while_waiting: Callable[[], None] | None = None,
        scoring: str = "pairwise",
    ) -> None:
        if scoring not in ("pairwise", "pointwise"):
            raise ValueError(f"scoring must be 'pairwise' or 'pointwise', got {scoring!r}")
        if scoring == "pointwise" and not getattr(judge, "pointwise", False):
            raise ValueError(f"the judge {judge.judge_id} cannot score single responses (pointwise); use pairwise")
        self.scoring = scoring
        self.judge = judge
        self.config = config
        self.principles = list(principles)
        self.template = template
        self.examples = list(examples)
        self.allow_ties = allow_ties
        self.cache = cache
        self.reporter = _LogOnly(reporter or NullReporter())
        self.spent = spent
        self.while_waiting = while_waiting
        self.judged = 0
        self.failed = 0
        select_principles(self.principles, "", mode=config.principle_sampling, seed=config.seed)  # fails early

    def __call__(self, prompts=None, completions=None, log_metric=None, **kwargs) -> list[float]:
        """Rewards for one batch of rollouts, in order (see the module docstring)."""
        conversations = [_conversation(p) for p in prompts]
        texts = [_text(c) for c in completions]
        if self.scoring == "pointwise":
            return self._pointwise(conversations, texts, log_metric)
        groups: dict[str, list[int]] = {}
        for i, conversation in enumerate(conversations):
            groups.setdefault(prompt_key(conversation), []).append(i)
        tasks = [
            JudgeTask(key=(i, j, p["id"]), conversation=conversations[i], response_a=texts[i],
                      response_b=texts[j], principle=p["comparison"])
            for key, members in groups.items()
            for p in select_principles(self.principles, key, mode=self.config.principle_sampling,
                                       seed=self.config.seed)
            for i, j in itertools.combinations(members, 2)
        ]
        wins: list[list[float]] = [[] for _ in texts]
        failed, margins, answered = 0, [], 0
        batches = label_tasks(
            self.judge, tasks, template=self.template, examples=self.examples, config=self.config,
            reporter=self.reporter, cache=self.cache, batch_size=max(32, 2 * self.config.concurrency),
            spent=self.spent, while_waiting=self.while_waiting, allow_ties=self.allow_ties,
        )
        try:
            for pairs in batches:
                if self.while_waiting is not None:
                    self.while_waiting()
                if any(BUDGET_REFUSED in p.error for p in pairs):
                    raise JudgeRewardError(self._budget_message())
                for pair in pairs:
                    i, j, _principle = pair.key
                    self.spent += pair.cost
                    p = pair.p_a if pair.verdict else None
                    if p is None:
                        failed += 1
                        p = NEUTRAL
                    else:
                        margins.append(abs(2 * p - 1))
                    wins[i].append(p)
                    wins[j].append(1.0 - p)
                answered += len(pairs)
                if self.judge.breaker is not None and self.judge.breaker.is_open:
                    raise JudgeRewardError(
                        f"the judge {self.judge.judge_id} stopped answering: {self.judge.breaker.error()}"
                    )
        finally:
            batches.close()
        if answered < len(tasks):  # label_tasks stops asking once the budget is spent
            raise JudgeRewardError(self._budget_message())
        if log_metric is not None and margins:
            log_metric("judge_margin", sum(margins) / len(margins))
        return self._step_rewards(wins, failed, answered, NEUTRAL, "judgments", log_metric)

    def _step_rewards(self, outcomes: list[list[float]], failed: int, asked: int, neutral: float, what: str,
                      log_metric) -> list[float]:
        """Each rollout's mean outcome (``neutral`` for none); counts, logs and checks the step's failures."""
        self.judged += asked
        self.failed += failed
        rewards = [sum(o) / len(o) if o else neutral for o in outcomes]
        if log_metric is not None:
            log_metric("judge_reward", sum(rewards) / len(rewards) if rewards else neutral)
            log_metric("judge_failed", float(failed))
        if failed:
            self.reporter.log(f"policy: {failed} of {asked} {what} of this step failed (reward {neutral})")
        self.check_failures(final=False)
        return rewards

    def _pointwise(self, conversations: list, texts: list[str], log_metric) -> list[float]:
        """Each rollout's mean normalised 1-10 score over its prompt's principle(s) (see the module docstring)."""
        items, owners = [], []
        for i, (conversation, text) in enumerate(zip(conversations, texts, strict=True)):
            key = prompt_key(conversation)
            for p in select_principles(self.principles, key, mode=self.config.principle_sampling,
                                       seed=self.config.seed):
                items.append((conversation, text, p["comparison"]))
                owners.append(i)
        scores = self.judge.score_points(items)
        per_rollout: list[list[float]] = [[] for _ in texts]
        failed = 0
        for owner, score in zip(owners, scores, strict=True):
            if score is None:
                failed += 1
                score = NEUTRAL_POINT
            per_rollout[owner].append(score)
        return self._step_rewards(per_rollout, failed, len(items), NEUTRAL_POINT, "pointwise scores", log_metric)

    def check_failures(self, *, final: bool = True) -> None:
        """Raise :class:`JudgeRewardError` when more than ``judge.max_failed_share`` of the judgments so far
        failed; before :data:`MIN_JUDGMENTS` judgments only when ``final`` (the stage's end)."""
        if not self.judged or (not final and self.judged < MIN_JUDGMENTS):
            return
        share = self.failed / self.judged
        if share > self.config.max_failed_share:
            raise JudgeRewardError(
                f"{self.failed} of {self.judged} judgments of the policy's rollouts failed ({share:.0%}, above "
                f"judge.max_failed_share {self.config.max_failed_share:.0%}); the judge {self.judge.judge_id} "
                "is misconfigured or overloaded (failed judgments count as a neutral reward of 0.5)"
            )

    def _budget_message(self) -> str:
        return (f"judge budget {self.config.budget:g} reached (spent {self.spent:.4f}) while scoring the policy's "
                "rollouts; raise judge.budget and resume (training continues from its last checkpoint)")

    def close(self) -> None:
        """Release the judge (threads, connections, a loaded model's memory is freed with the object)."""
        self.judge.close()
