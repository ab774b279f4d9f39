"""The ``likelihood`` judge backend: principle-conditioned likelihood on a local causal LM, order-invariant.

Each response is scored by how much more likely the model finds it after the principle's text than without:

    s(response) = log p(response | principle preamble + conversation) − log p(response | conversation)

summed over the response's tokens (a pointwise mutual information between the principle and the response),
and P(A preferred) = sigmoid(s(A) − s(B)). Neither response is shown next to the other, so there is no
position to be biased towards (``order_invariant``: the labeling protocol asks once), and no verdict token to
read: a small base model such as Gemma 3 270M, which as a pairwise A/B judge picks the first-shown response
98–100% of the time, can still say which answer fits a principle's wording better. It measures *fit to the
principle's words*, not correctness: it cannot check facts, follow long instructions, or weigh a subtle harm.

Only the response tokens' logits are computed (``logits_to_keep``; with Gemma's 262k-token vocabulary the
full-sequence logits would cost several GB). The unconditioned score does not depend on the principle, so it
is computed once per (conversation, response) within a call. Prompts are rendered like the policy's
(chat template, else the transcript of :mod:`training.transcript`); long contexts lose their beginning.
"""
from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path

from training import transcript
from training.config import JudgeConfig
from training.generation import prompt_text
from training.judge_prompt import JudgeRequest
from training.judges.base import OrderResult
from training.judges.local import LocalModelJudge, context_length

#: The preamble that conditions the response on the principle (``{principle}`` is its comparison text).
PREAMBLE = (
    "The following is a conversation with an AI assistant. Asked \"{principle}\", a careful reviewer would "
    "choose the assistant's answer below.\n\n"
)


class LikelihoodJudge(LocalModelJudge):
    """Judge by principle-conditioned likelihood (see the module docstring).

    Args:
        config: the run's judge config (``model``).
        models_dir: where ``demo://`` and converted GGUF models live.
        model, tokenizer: an already loaded pair to use instead of loading ``config.model`` (tests).
        batch_size: sequences per forward pass; max_response_tokens: longer responses are cut at the end;
        max_context_tokens: longer contexts lose their beginning (the final request is what the answer
            answers; a 270M model's forward pass costs about linearly in tokens on a CPU).

    Attributes:
        judge_id: ``likelihood:<model>``.
        generates_rationale: False; order_invariant: True.
    """

    order_invariant = True

    def __init__(
        self,
        config: JudgeConfig,
        models_dir: Path | None = None,
        *,
        model=None,
        tokenizer=None,
        batch_size: int = 8,
        max_response_tokens: int = 128,
        max_context_tokens: int = 512,
    ) -> None:
        super().__init__(config, models_dir, model=model, tokenizer=tokenizer, batch_size=batch_size)
        self.max_response_tokens = max_response_tokens
        self.max_context = min(context_length(self.model), max_context_tokens)
        self._bos = transcript.prefix(self.tokenizer)  # contexts are tokenized without it; it is put first
        self.params = {
            "preamble": PREAMBLE, "max_response_tokens": max_response_tokens, "max_context_tokens": self.max_context,
        }

    def response_logprobs(self, contexts: Sequence[str], responses: Sequence[str]) -> list[float]:
        """Summed log-probability (nats) of each response's tokens after its context.

        Contexts are cut from the start to fit the model's context; responses longer than
        ``max_response_tokens`` are cut at the end. Only the last ``longest response + 1`` positions' logits
        are computed (``logits_to_keep``).
        """
        import torch

        tok = self.tokenizer
        rows = []
        for context, response in zip(contexts, responses, strict=True):
            ctx_ids = tok(context, add_special_tokens=False)["input_ids"]
            resp_ids = tok(" " + response.strip(), add_special_tokens=False)["input_ids"][: self.max_response_tokens]
            if not resp_ids:
                resp_ids = [tok.eos_token_id]
            bos = [tok.bos_token_id] if self._bos else []
            room = self.max_context - len(resp_ids) - len(bos)
            rows.append((bos + ctx_ids[-room:] if room > 0 else bos, resp_ids))
        out: list[float] = []
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start : start + self.batch_size]
            width = max(len(c) + len(r) for c, r in batch)
            keep = max(len(r) for _, r in batch) + 1
            ids = torch.full((len(batch), width), tok.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for i, (c, r) in enumerate(batch):
                seq = c + r
                ids[i, width - len(seq) :] = torch.tensor(seq)
                mask[i, width - len(seq) :] = 1
            positions = (mask.cumsum(dim=-1) - 1).clamp(min=0)
            with torch.no_grad():
                logits = self.model(
                    input_ids=ids.to(self.model.device),
                    attention_mask=mask.to(self.model.device),
                    position_ids=positions.to(self.model.device),
                    logits_to_keep=keep,
                ).logits.float()
            logprobs = torch.log_softmax(logits[:, :-1, :], dim=-1)  # position j predicts token j + 1
            for i, (_, r) in enumerate(batch):
                targets = torch.tensor(r, device=logprobs.device)
                picked = logprobs[i, -len(r) :, :].gather(1, targets[:, None]).squeeze(1)
                out.append(float(picked.sum()))
        return out

    def _context(self, conversation) -> str:
        text = prompt_text(self.tokenizer, conversation)
        return text[len(self._bos) :] if self._bos and text.startswith(self._bos) else text

    def score(self, requests: Sequence[JudgeRequest]) -> list[OrderResult]:
        """P(shown A preferred) = sigmoid(s(A) − s(B)) per request; a failed batch fails its requests."""
        if not requests:
            return []
        if any(r.conversation is None for r in requests):
            message = "the likelihood judge needs the raw conversation and responses (render with judge_prompt.render)"
            return [OrderResult(p_first=None, error=message) for _ in requests]
        began = time.perf_counter()
        conditioned: dict[tuple, int] = {}
        plain: dict[tuple, int] = {}
        contexts: list[str] = []
        responses: list[str] = []

        def slot(table: dict, key: tuple, context: str, response: str) -> None:
            if key not in table:
                table[key] = len(contexts)
                contexts.append(context)
                responses.append(response)

        for r in requests:
            base = self._context(r.conversation)
            principled = PREAMBLE.format(principle=r.principle.strip()) + base
            for response in (r.shown_a, r.shown_b):
                slot(conditioned, (base, r.principle, response), principled, response)
                slot(plain, (base, response), base, response)
        try:
            logprobs = self.response_logprobs(contexts, responses)
        except Exception as exc:  # noqa: BLE001 - recorded on each judgment
            message = f"{type(exc).__name__}: {exc}"[:1000]
            return [OrderResult(p_first=None, error=message) for _ in requests]
        latency = (time.perf_counter() - began) * 1000.0 / len(requests)
        results = []
        for r in requests:
            base = self._context(r.conversation)
            scores = [
                logprobs[conditioned[(base, r.principle, resp)]] - logprobs[plain[(base, resp)]]
                for resp in (r.shown_a, r.shown_b)
            ]
            diff = scores[0] - scores[1]
            p = 1.0 / (1.0 + math.exp(-diff)) if diff > -700 else 0.0
            results.append(
                OrderResult(
                    p_first=p,
                    raw=f"pmi_A={scores[0]:.4f} pmi_B={scores[1]:.4f}",
                    latency_ms=latency,
                )
            )
        return results
