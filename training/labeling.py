"""The RLAIF labeling protocol: principles, both orders, averaging, ties, self-consistency, cost and the
request cache, around any judge backend (:mod:`training.judges`).

For each comparison:

1. pick the principle(s): one drawn by weight, deterministically per (seed, comparison), as Constitutional AI
   samples one principle per comparison (Bai et al. 2022), or every enabled principle (:func:`select_principles`);
2. render the judge prompt in both orders, A/B and B/A (Lee et al. 2023, section 2.1), unless the backend is
   order invariant (a reward model);
3. with self-consistency, ask for ``n`` sampled rationales per order and average their probabilities
   (Wang et al. 2022; Lee et al. 2023 section 2.1.2) (:func:`combine_samples`);
4. map the B/A answer back to A, average the two orders, call a tie inside ``tie_margin`` and note whether the
   orders agree (:func:`combine_orders`, :func:`verdict_for`, :func:`orders_agree`);
5. account tokens and cost; a request answered from the cache costs nothing (:func:`request_key`).

A request that still fails after the backend's retries makes a *failed* :class:`JudgedPair` (verdict ``""``,
the error and raw outputs kept); nothing is dropped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import dataclass
from typing import Protocol

from training.config import JudgeConfig
from training.judge_prompt import JudgeRequest, render, validate_template
from training.judges.base import Judge, JudgedPair, JudgeTask, OrderResult
from training.progress import Reporter, check_cancelled

# --- principles ------------------------------------------------------------------------------------


def unit_draw(seed: int, key: Hashable) -> float:
    """A number in [0, 1) fixed by ``(seed, key)``: the same in every process and on every resume."""
    digest = hashlib.sha256(f"{seed}\x1f{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def select_principles(
    principles: Sequence[Mapping], key: Hashable, *, mode: str = "sample", seed: int = 0
) -> list[Mapping]:
    """The principle(s) to judge one comparison under; also the draw of critique-and-revise's principle per
    prompt (:mod:`training.critique_revise`), so one constitution and seed draw the same way everywhere.

    The weighted draw maps a number fixed by ``(seed, key)`` (:func:`unit_draw`, a SHA-256 of both: the same
    in every process, Python version and resume) onto the enabled principles' cumulative weights, in order.

    Args:
        principles: ordered dicts with at least ``weight`` (>= 0) and ``enabled``.
        key: the comparison's stable identifier (e.g. its prompt hash and sample indices): the draw depends
            only on ``(seed, key)``.
        mode: ``sample`` (one principle, probability proportional to weight) or ``all`` (every enabled one).

    Raises:
        ValueError: no enabled principle (for ``sample``: none with a positive weight), or an unknown mode.
    """
    enabled = [p for p in principles if p.get("enabled", True)]
    if mode == "all":
        if not enabled:
            raise ValueError("the constitution version has no enabled principle")
        return enabled
    if mode != "sample":
        raise ValueError(f"principle_sampling: unknown mode {mode!r} (sample, all)")
    weighted = [p for p in enabled if float(p.get("weight", 1.0)) > 0]
    if not weighted:
        raise ValueError("the constitution version has no enabled principle with a positive weight")
    total = sum(float(p.get("weight", 1.0)) for p in weighted)
    target = unit_draw(seed, key) * total
    cumulative = 0.0
    for p in weighted:
        cumulative += float(p.get("weight", 1.0))
        if target < cumulative:
            return [p]
    return [weighted[-1]]


# --- arithmetic of one judgment ---------------------------------------------------------------------


def combine_samples(results: Sequence[OrderResult]) -> OrderResult:
    """Average self-consistency samples of one order: the mean ``p_first`` of the samples that succeeded.

    Tokens, latency and attempts add up; the rationale is the first successful sample's. When every sample
    failed, the result fails with the first error.
    """
    ok = [r for r in results if r.p_first is not None]
    merged = OrderResult(
        p_first=sum(r.p_first for r in ok) / len(ok) if ok else None,
        rationale=ok[0].rationale if ok else "",
        raw=(ok[0] if ok else results[0]).raw if results else "",
        latency_ms=sum(r.latency_ms for r in results),
        prompt_tokens=sum(r.prompt_tokens for r in results),
        completion_tokens=sum(r.completion_tokens for r in results),
        error="" if ok else next((r.error for r in results if r.error), "failed"),
        attempts=sum(r.attempts for r in results),
    )
    return merged


def combine_orders(
    p_first_ab: float | None, p_first_ba: float | None
) -> tuple[float | None, float | None, float | None]:
    """Debias by position: map the swapped order back to A and average.

    Args:
        p_first_ab: P(first shown preferred) with A shown first.
        p_first_ba: P(first shown preferred) with B shown first (so it is P(B)); None when only one order
            was asked.

    Returns:
        ``(p_a_ab, p_a_ba, p_a)`` where ``p_a_ba = 1 - p_first_ba`` and ``p_a`` is their mean (or the one
        order available).
    """
    p_a_ab = p_first_ab
    p_a_ba = None if p_first_ba is None else 1.0 - p_first_ba
    known = [p for p in (p_a_ab, p_a_ba) if p is not None]
    p_a = sum(known) / len(known) if known else None
    return p_a_ab, p_a_ba, p_a


def verdict_for(p_a: float | None, tie_margin: float) -> str:
    """The verdict from a soft preference P(A): ``"tie"`` when ``|p_a - 0.5| <= tie_margin``, else the favoured
    side ``"A"`` or ``"B"``; ``""`` (no verdict) when ``p_a`` is None or not finite.

    The one rule for every verdict from a probability (labeling, the audit's per-order verdicts, the evaluate
    stage's win rate). The margin is the run's ``judge.tie_margin`` and is inclusive, with a float tolerance
    of 1e-12 so that a probability on the boundary (0.55 with a margin of 0.05, which float arithmetic puts
    just outside) is a tie, as written.
    """
    if p_a is None or not math.isfinite(p_a):
        return ""
    if abs(p_a - 0.5) <= tie_margin + 1e-12:
        return "tie"
    return "A" if p_a > 0.5 else "B"


def _side(p: float) -> str:
    return "A" if p > 0.5 else "B" if p < 0.5 else "tie"


def orders_agree(p_a_ab: float | None, p_a_ba: float | None) -> bool | None:
    """Position consistency: both orders favour the same response (both > 0.5, both < 0.5, or both exactly
    0.5); None when an order is missing."""
    if p_a_ab is None or p_a_ba is None:
        return None
    return _side(p_a_ab) == _side(p_a_ba)


def cost_of(prompt_tokens: int, completion_tokens: int, config: JudgeConfig) -> float:
    """Price of the tokens at the config's per-1k-token prices."""
    return (
        prompt_tokens * config.price_per_1k_prompt_tokens + completion_tokens * config.price_per_1k_completion_tokens
    ) / 1000.0


# --- the request cache --------------------------------------------------------------------------------


class JudgeCache(Protocol):
    """Where answered judge requests are kept so the same request is never paid for twice.

    ``get_many`` returns the stored :class:`OrderResult` fields (a dict) of the keys it has; ``put_many``
    stores new ones (a key already present is left as is).
    """

    def get_many(self, keys: Sequence[str]) -> dict[str, dict]: ...

    def put_many(self, entries: Mapping[str, dict]) -> None: ...


class MemoryCache:
    """A :class:`JudgeCache` in a dict (tests, scripts)."""

    def __init__(self) -> None:
        self.entries: dict[str, dict] = {}

    def get_many(self, keys: Sequence[str]) -> dict[str, dict]:
        return {k: self.entries[k] for k in keys if k in self.entries}

    def put_many(self, entries: Mapping[str, dict]) -> None:
        for key, value in entries.items():
            self.entries.setdefault(key, dict(value))


def request_key(judge: Judge, request: JudgeRequest) -> str:
    """SHA-256 of what determines an answer: the judge (backend, model, endpoint), its parameters, the
    rendered messages, the sample index and, for backends that score responses directly, the raw inputs."""
    payload = {
        "judge": judge.judge_id,
        "params": dict(judge.params),
        "messages": [dict(m) for m in request.messages],
        "sample": request.sample,
        "inputs": [request.conversation, request.shown_a, request.shown_b],
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


# --- the protocol ---------------------------------------------------------------------------------------


def _result(future, while_waiting: Callable[[], None] | None):
    """``future.result()``, calling ``while_waiting`` in this thread until it is ready (and once after)."""
    if while_waiting is None:
        return future.result()
    while True:
        try:
            result = future.result(timeout=0.05)
        except FuturesTimeout:
            while_waiting()
            continue
        while_waiting()
        return result


@dataclass
class _Prepared:
    tasks: list[JudgeTask]
    requests: list[list[JudgeRequest]]  # per task: order-major, then sample
    keys: list[list[str]]
    known: dict[str, OrderResult]  # cache hits
    to_score: list[JudgeRequest]
    to_score_keys: list[str]


def requests_for(
    task: JudgeTask, *, template: str, examples: Sequence[Mapping], both_orders: bool, samples: int,
    allow_ties: bool = False,
) -> list[JudgeRequest]:
    """The rendered requests for one task: A/B samples first, then B/A samples."""
    orders = (False, True) if both_orders else (False,)
    out = []
    for swapped in orders:
        base = render(template, task.principle, task.conversation, task.response_a, task.response_b, examples,
                      swapped, allow_ties=allow_ties)
        out.extend(dataclasses.replace(base, sample=s) for s in range(samples))
    return out


def assemble(
    task: JudgeTask,
    results: Sequence[OrderResult],
    cached: Sequence[bool],
    *,
    both_orders: bool,
    samples: int,
    config: JudgeConfig,
) -> JudgedPair:
    """Turn one task's per-request results (A/B samples, then B/A samples) into a :class:`JudgedPair`."""
    ab = combine_samples(results[:samples])
    ba = combine_samples(results[samples : 2 * samples]) if both_orders else None
    p_a_ab, p_a_ba, p_a = combine_orders(ab.p_first, ba.p_first if ba else None)
    failed = [o for o in (ab, ba) if o is not None and o.p_first is None]
    raw_outputs = []
    for i, (result, hit) in enumerate(zip(results, cached, strict=True)):
        raw_outputs.append(
            {
                "order": "B/A" if i >= samples else "A/B",
                "sample": i % samples,
                "p_first": result.p_first,
                "raw": result.raw,
                "error": result.error,
                "attempts": result.attempts,
                "cached": hit,
            }
        )
    paid = [r for r, hit in zip(results, cached, strict=True) if not hit]
    prompt_tokens = sum(r.prompt_tokens for r in results)
    completion_tokens = sum(r.completion_tokens for r in results)
    rationale = ab.rationale or (f"[order B/A] {ba.rationale}" if ba is not None and ba.rationale else "")
    if failed:
        errors = "; ".join(f"{'B/A' if o is ba else 'A/B'}: {o.error}" for o in failed)
        verdict, consistent = "", None
        p_a = None
    else:
        errors = ""
        verdict = verdict_for(p_a, config.tie_margin)
        consistent = orders_agree(p_a_ab, p_a_ba)
    return JudgedPair(
        key=task.key,
        p_a_ab=p_a_ab,
        p_a_ba=p_a_ba,
        p_a=p_a,
        verdict=verdict,
        position_consistent=consistent,
        rationale=rationale,
        raw_outputs=raw_outputs,
        latency_ms=sum(r.latency_ms for r in paid),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost=cost_of(sum(r.prompt_tokens for r in paid), sum(r.completion_tokens for r in paid), config),
        error=errors,
        attempts=sum(r.attempts for r in paid),
    )


def label_tasks(
    judge: Judge,
    tasks: Sequence[JudgeTask] | Iterable[JudgeTask],
    *,
    template: str,
    examples: Sequence[Mapping],
    config: JudgeConfig,
    reporter: Reporter,
    cache: JudgeCache | None = None,
    batch_size: int = 32,
    progress_offset: int = 0,
    progress_total: int | None = None,
    spent: float = 0.0,
    while_waiting: Callable[[], None] | None = None,
    allow_ties: bool = False,
) -> Iterator[list[JudgedPair]]:
    """Judge ``tasks`` under the labeling protocol, yielding one list of :class:`JudgedPair` per batch.

    While the caller writes one batch, the judge already works on the next (one batch is scored ahead in a
    background thread); the cache is read and written only in the caller's thread. Progress
    (``progress_offset`` + tasks yielded, of ``progress_total``) is reported after the caller took each batch,
    and a cancel is checked before each batch.

    Args:
        judge: a backend from :func:`training.judges.build_judge`.
        tasks: the comparisons × principles to judge (consumed lazily).
        template, examples: the constitution version's judge template and few-shot examples.
        config: the judge config (both_orders, self_consistency, tie_margin, prices, budget).
        reporter: progress, log lines and cancellation.
        cache: a :class:`JudgeCache`, or None to always call the judge.
        batch_size: tasks per batch.
        spent: cost already spent by earlier runs of the same stage (counts towards ``config.budget``).
        while_waiting: called again and again in the caller's thread while a batch is being scored (about
            every 0.05 s, and once when it returns), e.g. to persist answers as they arrive.
        allow_ties: the constitution lets the judge answer "tie" (a tie answer is P = 0.5 in that order).

    Yields:
        Lists of results in task order; failed judgments included (verdict ``""``).

    Raises:
        training.judge_prompt.TemplateError: the template is invalid.
        training.progress.Cancelled: the reporter asked to stop (finished batches were yielded).
    """
    validate_template(template)
    both_orders = config.both_orders and not judge.order_invariant
    samples = config.self_consistency if judge.generates_rationale else 1
    if progress_total is None and hasattr(tasks, "__len__"):
        progress_total = progress_offset + len(tasks)
    iterator = iter(tasks)
    done = progress_offset

    def prepare(batch: list[JudgeTask]) -> _Prepared:
        requests = [
            requests_for(t, template=template, examples=examples, both_orders=both_orders, samples=samples,
                         allow_ties=allow_ties)
            for t in batch
        ]
        keys = [[request_key(judge, r) for r in rs] for rs in requests]
        flat_keys = [k for ks in keys for k in ks]
        stored = cache.get_many(flat_keys) if cache is not None else {}
        known = {k: OrderResult(**v) for k, v in stored.items()}
        to_score, to_score_keys, seen = [], [], set()
        for rs, ks in zip(requests, keys, strict=True):
            for r, k in zip(rs, ks, strict=True):
                if k not in known and k not in seen:
                    seen.add(k)
                    to_score.append(r)
                    to_score_keys.append(k)
        return _Prepared(batch, requests, keys, known, to_score, to_score_keys)

    def finish(prepared: _Prepared, scored: list[OrderResult]) -> list[JudgedPair]:
        fresh = dict(zip(prepared.to_score_keys, scored, strict=True))
        if cache is not None:
            cache.put_many({k: dataclasses.asdict(r) for k, r in fresh.items() if r.p_first is not None})
        pairs = []
        for task, ks in zip(prepared.tasks, prepared.keys, strict=True):
            results = [fresh[k] if k in fresh else prepared.known[k] for k in ks]
            hits = [k not in fresh for k in ks]
            pairs.append(assemble(task, results, hits, both_orders=both_orders, samples=samples, config=config))
        return pairs

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="label")
    pending = following = None
    try:
        while True:
            check_cancelled(reporter)
            following = None
            over_budget = config.budget > 0 and spent >= config.budget
            batch = [] if over_budget else list(itertools.islice(iterator, batch_size))
            if over_budget:
                reporter.log(f"judge budget {config.budget:g} reached (spent {spent:.4f}); labeling stops here")
            if batch:
                prepared = prepare(batch)
                following = (prepared, pool.submit(judge.score, prepared.to_score))
            if pending is not None:
                prepared_now, future = pending
                pending = None
                pairs = finish(prepared_now, _result(future, while_waiting))
                spent += sum(p.cost for p in pairs)
                yield pairs
                done += len(pairs)
                reporter.progress(done, progress_total, "judging")
            pending = following
            if pending is None:
                break
    finally:
        for waiting in (pending, following):
            if waiting is not None:
                waiting[1].cancel()
        judge.stop()  # stopped early (an error, a timeout, a cancel): start no further calls
        pool.shutdown(wait=True)
