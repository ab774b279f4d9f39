"""The ``transformers`` judge backend: a local causal LM scored on the option labels.

The judge prompt is rendered with the tokenizer's chat template (a generation prompt added), followed by
:data:`~training.judge_prompt.VERDICT_PREFIX`; the soft preference is the softmax over the log-probabilities
of the next token being "A" or "B" (Lee et al. 2023, "RLAIF vs. RLHF", section 2.1: the probabilities of the
option tokens, not a sampled answer). With ``chain_of_thought`` a rationale is generated first (greedy, or
sampled at ``temperature`` with self-consistency) and the verdict is scored after it. Prompts are batched with
left padding; too-long prompts lose their beginning, never the verdict position.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Sequence
from pathlib import Path

from training.config import JudgeConfig
from training.generation import prompt_text
from training.judge_prompt import VERDICT_PREFIX, JudgeRequest
from training.judges.base import OrderResult
from training.judges.local import LocalModelJudge, context_length


def label_token_ids(tokenizer, label: str) -> list[int]:
    """Token ids that spell ``label`` as one token, with and without a leading space (" A", "A")."""
    ids = []
    for variant in (f" {label}", label):
        encoded = tokenizer.encode(variant, add_special_tokens=False)
        if len(encoded) == 1 and encoded[0] not in ids:
            ids.append(encoded[0])
    if not ids:
        raise ValueError(f"the judge's tokenizer has no single token for the label {label!r}")
    return ids


class TransformersJudge(LocalModelJudge):
    """Judge with a local causal LM. Besides pairwise verdicts it scores single responses from 1 to 10
    (:meth:`score_points`, :mod:`training.pointwise`).

    Args:
        config: the run's judge config (``model``, ``chain_of_thought``, ``max_new_tokens``, ``temperature``,
            ``self_consistency``, ``seed``).
        models_dir: where ``demo://`` models live.
        model, tokenizer: an already loaded pair to use instead of loading ``config.model`` (tests).
        batch_size: prompts per forward pass.

    Attributes:
        judge_id: ``transformers:<model>``.
        generates_rationale: True with ``chain_of_thought`` (only then can self-consistency sample).
        params: what, besides the prompt, determines the answer (part of the request cache key).
    """

    def __init__(
        self,
        config: JudgeConfig,
        models_dir: Path | None = None,
        *,
        model=None,
        tokenizer=None,
        batch_size: int = 8,
    ) -> None:
        super().__init__(config, models_dir, model=model, tokenizer=tokenizer, batch_size=batch_size)
        self.tokenizer.padding_side = "left"
        self.tokenizer.truncation_side = "left"
        self.generates_rationale = config.chain_of_thought
        self.sampled = config.chain_of_thought and config.self_consistency > 1
        self.ids_a = label_token_ids(self.tokenizer, "A")
        self.ids_b = label_token_ids(self.tokenizer, "B")
        self.max_context = context_length(self.model)
        parameters = inspect.signature(self.model.forward).parameters
        self._takes_position_ids = "position_ids" in parameters
        # Only the last position's logits are needed: with Gemma's 262k-token vocabulary, full-sequence
        # logits made scoring 2.3x slower and cost about 3.4 GB more.
        self._keep = {"logits_to_keep": 1} if "logits_to_keep" in parameters else {}
        self.params = {
            "chain_of_thought": config.chain_of_thought,
            "max_new_tokens": config.max_new_tokens if config.chain_of_thought else 0,
            "temperature": config.temperature if self.sampled else 0.0,
            "seed": config.seed if self.sampled else None,
        }

    pointwise = True

    def score_points(self, items: Sequence[tuple]) -> list[float | None]:
        """Pointwise scores (Lee et al. 2023, section 2.3; :mod:`training.pointwise`): for each
        ``(conversation, response, principle)``, the expected 1-10 score read from the score tokens'
        probabilities after the scoring prompt, rescaled to [-1, 1]. A batch that raises gives None for its
        items.

        Raises:
            ValueError: the tokenizer cannot spell the scores 1-9 as one token each after "Score:" (and 10 as
                one token or "1" then "0"), so no score can be read.
        """
        from training.pointwise import normalised_score

        tokens = self.score_tokens
        results: list[float | None] = []
        for start in range(0, len(items), self.batch_size):
            batch = list(items[start : start + self.batch_size])
            try:
                results.extend(normalised_score(d) for d in self._score_distributions(batch, tokens))
            except Exception:  # noqa: BLE001 - a failed batch is a neutral reward, counted by the caller
                results.extend([None] * len(batch))
        return results

    @functools.cached_property
    def score_tokens(self) -> tuple[list[int], dict[int, int], int | None]:
        """(tokens that follow "Score:" before any digit, first token of each score, the "0" after a "1" when
        "10" is two tokens), read from how the tokeniser spells "Score: k"; ValueError when it cannot be read."""
        from training.pointwise import SCORE_PREFIX, SCORES

        tok = self.tokenizer
        base = tok.encode(SCORE_PREFIX, add_special_tokens=False)
        tails = {}
        for k in SCORES:
            ids = tok.encode(f"{SCORE_PREFIX} {k}", add_special_tokens=False)
            if ids[: len(base)] != base:
                raise ValueError(f"the judge's tokenizer merges {SCORE_PREFIX!r} with the score that follows")
            tails[k] = ids[len(base) :]
        common = []
        for column in zip(*(tails[k] for k in SCORES[:-1]), strict=False):
            if len(set(column)) != 1:
                break
            common.append(column[0])
        first: dict[int, int] = {}
        for k in SCORES[:-1]:
            rest = tails[k][len(common) :]
            if len(rest) != 1:
                raise ValueError(f"the judge's tokenizer spells the score {k} with {len(rest)} tokens")
            first[k] = rest[0]
        ten = tails[10][len(common) :]
        zero = None
        if len(ten) == 1:
            first[10] = ten[0]
        elif len(ten) == 2 and ten[0] == first[1]:
            zero = ten[1]
        else:
            raise ValueError("the judge's tokenizer spells the score 10 in a way that cannot be read")
        return common, first, zero

    def _next_logprobs(self, rows: list[list[int]]):
        import torch

        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, width - len(row) :] = torch.tensor(row)
            mask[i, width - len(row) :] = 1
        inputs = {"input_ids": ids.to(self.model.device), "attention_mask": mask.to(self.model.device)}
        if self._takes_position_ids:
            inputs["position_ids"] = (mask.cumsum(dim=-1) - 1).clamp(min=0).to(self.model.device)
        with torch.no_grad():
            logits = self.model(**inputs, **self._keep).logits[:, -1, :].float()
        return torch.log_softmax(logits, dim=-1)

    def _score_distributions(self, batch: list[tuple], tokens) -> list[list[float]]:
        from training.pointwise import SCORE_PREFIX, render_score_prompt, score_distribution

        common, first, zero = tokens
        room = self.max_context - len(common) - 2
        rows = []
        for conversation, response, principle in batch:
            text = prompt_text(self.tokenizer, render_score_prompt(conversation, response, principle))
            ids = self.tokenizer.encode(f"{text} {SCORE_PREFIX}".rstrip(), add_special_tokens=False)
            rows.append(ids[-room:] + common)
        logprobs = self._next_logprobs(rows)
        after_one = self._next_logprobs([r + [first[1]] for r in rows]) if zero is not None else None
        out = []
        for i in range(len(rows)):
            firsts = {str(k): float(logprobs[i, t]) for k, t in first.items()}
            second = {"0": float(after_one[i, zero])} if after_one is not None else None
            out.append(score_distribution(firsts, second))
        return out

    def score(self, requests: Sequence[JudgeRequest]) -> list[OrderResult]:
        """Score ``requests`` in batches; a batch that raises (e.g. out of memory) fails its requests."""
        results: list[OrderResult] = []
        for start in range(0, len(requests), self.batch_size):
            batch = list(requests[start : start + self.batch_size])
            began = time.perf_counter()
            try:
                scored = self._score_batch(batch)
            except Exception as exc:  # noqa: BLE001 - recorded on each judgment of the batch
                message = f"{type(exc).__name__}: {exc}"[:1000]
                scored = [OrderResult(p_first=None, error=message) for _ in batch]
            latency = (time.perf_counter() - began) * 1000.0 / max(1, len(batch))
            for result in scored:
                result.latency_ms = latency
            results.extend(scored)
        return results

    def _encode(self, texts: list[str], room: int):
        encoded = self.tokenizer(
            texts,
            return_tensors="pt",
            padding=True,
            truncation=True,
            max_length=max(8, self.max_context - room),
            add_special_tokens=False,
        )
        return encoded.to(self.model.device)

    def _rationales(self, prompts: list[str], samples: list[int]) -> tuple[list[str], list[int]]:
        import torch

        encoded = self._encode(prompts, self.config.max_new_tokens + 8)
        torch.manual_seed(self.config.seed + (samples[0] if samples else 0))
        with torch.no_grad():
            output = self.model.generate(
                **encoded,
                do_sample=self.sampled,
                temperature=self.config.temperature if self.sampled else None,
                top_p=None,
                top_k=None,
                max_new_tokens=self.config.max_new_tokens,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.tokenizer.eos_token_id,
            )
        new_tokens = output[:, encoded["input_ids"].shape[1] :]
        texts, counts = [], []
        for tokens in new_tokens:
            text = self.tokenizer.decode(tokens, skip_special_tokens=True)
            cut = text.find(VERDICT_PREFIX)
            texts.append((text[:cut] if cut >= 0 else text).strip())
            counts.append(int((tokens != self.tokenizer.pad_token_id).sum()))
        return texts, counts

    def _score_batch(self, batch: list[JudgeRequest]) -> list[OrderResult]:
        import torch

        prompts = [prompt_text(self.tokenizer, list(r.messages)) for r in batch]
        rationales, generated = [""] * len(batch), [0] * len(batch)
        if self.config.chain_of_thought:
            # One generate call per distinct sample index keeps seeding reproducible per sample.
            for sample in sorted({r.sample for r in batch}):
                rows = [i for i, r in enumerate(batch) if r.sample == sample]
                texts, counts = self._rationales([prompts[i] for i in rows], [sample])
                for i, text, count in zip(rows, texts, counts, strict=True):
                    rationales[i], generated[i] = text, count
        scored_texts = [
            f"{p} {r}\n{VERDICT_PREFIX}" if r else f"{p} {VERDICT_PREFIX}"
            for p, r in zip(prompts, rationales, strict=True)
        ]
        encoded = self._encode(scored_texts, 1)
        inputs = dict(encoded)
        if self._takes_position_ids:
            # Left padding: positions count real tokens only, so a padded row scores as it would alone.
            inputs["position_ids"] = (encoded["attention_mask"].cumsum(dim=-1) - 1).clamp(min=0)
        with torch.no_grad():
            logits = self.model(**inputs, **self._keep).logits[:, -1, :].float()
        logprobs = torch.log_softmax(logits, dim=-1)
        lp_a = torch.logsumexp(logprobs[:, self.ids_a], dim=-1)
        lp_b = torch.logsumexp(logprobs[:, self.ids_b], dim=-1)
        p_first = torch.sigmoid(lp_a - lp_b).tolist()
        prompt_tokens = encoded["attention_mask"].sum(dim=1).tolist()
        results = []
        for i in range(len(batch)):
            label = "A" if p_first[i] >= 0.5 else "B"
            raw = f"{rationales[i]}\n{VERDICT_PREFIX} {label}".strip()
            results.append(
                OrderResult(
                    p_first=float(p_first[i]),
                    rationale=rationales[i],
                    raw=raw,
                    prompt_tokens=int(prompt_tokens[i]),
                    completion_tokens=generated[i] + 1,
                )
            )
        return results
