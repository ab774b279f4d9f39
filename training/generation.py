"""Sampling candidate responses from a policy: a local transformers causal LM, batched with left padding,
using the tokenizer's chat template when it has one and the transcript format of :mod:`training.transcript`
when it has none (a base model), in which case generation stops at the next turn marker and the answer is
cut there."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from training import transcript
from training.chat import Conversation, as_messages
from training.config import GenerationConfig
from training.generation_backends import Sampler
from training.modeling import ensure_pad_token, resolve
from training.progress import NullReporter, Reporter, check_cancelled


@dataclass(frozen=True)
class Sample:
    """One generated response.

    Attributes:
        prompt_index: index into the ``prompts`` argument.
        sample_index: 0..K-1 among the prompt's samples.
        text: the decoded response (special tokens removed, stripped).
        token_count: number of generated tokens (up to and including EOS).
    """

    prompt_index: int
    sample_index: int
    text: str
    token_count: int


def load_causal_lm(name: str, models_dir: Path | None = None, reporter: Reporter | None = None):
    """Load a causal LM and its tokenizer for generation (eval mode, left padding, a pad token).

    Args:
        name: hub id, local path or offline name (see :func:`training.modeling.resolve`); a GGUF file is
            converted on first use, with progress sent to ``reporter``; a LoRA adapter folder (a stage's saved
            adapter) is loaded onto its base and merged (:func:`training.adapters.load_for_inference`).

    Raises:
        training.modeling.ModelNotFound: the name resolves to nothing.
        OSError: ``from_pretrained`` could not load it (e.g. a hub id without network).
    """
    from transformers import AutoTokenizer

    from training.adapters import load_for_inference

    path = resolve(name, models_dir, reporter)
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"
    tokenizer.truncation_side = "left"  # never cut the generation prompt at the end
    ensure_pad_token(tokenizer)
    model = load_for_inference(path)  # a full model, or a LoRA adapter merged into its base
    return model, tokenizer


def prompt_text(tokenizer, conversation: Conversation) -> str:
    """The text the policy is conditioned on: the chat template with a generation prompt where the
    tokenizer has one, else the transcript ``Human: …\\n\\nAssistant:`` (:func:`training.transcript.render`),
    after the BOS token where the tokenizer adds one (:func:`training.transcript.prefix`)."""
    messages = as_messages(conversation)
    if not transcript.uses_transcript(tokenizer):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return transcript.prefix(tokenizer) + transcript.render(messages)


def fit_conversation(tokenizer, conversation: Conversation, max_tokens: int) -> Conversation:
    """Shorten a prompt so that :func:`prompt_text` of it takes at most ``max_tokens`` tokens, keeping its end:
    the oldest turns are dropped first (the last turn is always kept), then the start of the remaining first
    turn's text is cut. Multi-turn prompts such as HH-RLHF's outgrow small models' context windows; the
    final request is what the response must answer.

    Args:
        conversation: plain text or chat messages.
        max_tokens: token budget for the prompt (the model's context minus the response length).
    """
    def length(conv) -> int:
        return len(tokenizer(prompt_text(tokenizer, conv), add_special_tokens=False)["input_ids"])

    if max_tokens <= 0 or length(conversation) <= max_tokens:
        return conversation
    messages = as_messages(conversation)
    while len(messages) > 1 and length(messages) > max_tokens:
        messages = messages[1:]
        if messages[0]["role"] == "assistant" and len(messages) > 1:
            messages = messages[1:]  # a conversation starts with the user or the system
    if length(messages) > max_tokens:
        first = dict(messages[0])
        ids = tokenizer(first["content"], add_special_tokens=False)["input_ids"]
        overflow = length(messages) - max_tokens
        first["content"] = tokenizer.decode(ids[overflow + 1 :], skip_special_tokens=True)
        messages = [first, *messages[1:]]
    return messages[0]["content"] if isinstance(conversation, str) and len(messages) == 1 else messages


def generate(
    model,
    tokenizer,
    prompts: Sequence[Conversation],
    config: GenerationConfig,
    *,
    num_samples: int | None = None,
    reporter: Reporter | None = None,
    progress_offset: int = 0,
    progress_total: int | None = None,
) -> list[Sample]:
    """Sample ``num_samples`` (default ``config.samples_per_prompt``) responses for each prompt.

    With a tokenizer without chat template (a base model) prompts are transcripts: generation stops at the
    next turn marker (``stop_strings``) and the text is cut before it (:mod:`training.transcript`).
    Prompts are processed in batches of ``config.batch_size``; each batch is seeded with
    ``config.seed + first prompt index`` so results do not depend on how a resumed stage batches them.
    Progress is reported per batch as ``progress_offset + prompts done`` of ``progress_total``.

    Args:
        model, tokenizer: from :func:`load_causal_lm`.
        prompts: plain strings or chat message lists.

    Returns:
        Samples ordered by prompt, then sample index.

    Raises:
        training.progress.Cancelled: the reporter asked to stop (between batches).
    """
    import torch

    reporter = reporter or NullReporter()
    k = num_samples or config.samples_per_prompt
    total = progress_total if progress_total is not None else progress_offset + len(prompts)
    max_context = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", 2048)
    stops = {}
    if transcript.uses_transcript(tokenizer):
        stops = {"stop_strings": list(transcript.STOP_STRINGS), "tokenizer": tokenizer}
    samples: list[Sample] = []
    for start in range(0, len(prompts), config.batch_size):
        check_cancelled(reporter)
        batch = prompts[start : start + config.batch_size]
        budget = max_context - config.max_new_tokens
        texts = [prompt_text(tokenizer, fit_conversation(tokenizer, p, budget)) for p in batch]
        encoded = tokenizer(
            texts,
            return_tensors="pt",
            padding=True,
            truncation=True,  # a backstop only: fit_conversation already kept the prompt in budget
            max_length=max(8, max_context - config.max_new_tokens),
            add_special_tokens=False,
        )
        torch.manual_seed(config.seed + progress_offset + start)
        with torch.no_grad():
            output = model.generate(
                **encoded,
                do_sample=config.temperature > 0,
                temperature=config.temperature if config.temperature > 0 else None,
                top_p=config.top_p if config.temperature > 0 else None,
                max_new_tokens=config.max_new_tokens,
                num_return_sequences=k,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
                **stops,
            )
        new_tokens = output[:, encoded["input_ids"].shape[1] :]
        for row, tokens in enumerate(new_tokens):
            text = tokenizer.decode(tokens, skip_special_tokens=True)
            non_pad = tokens[tokens != tokenizer.pad_token_id]
            eos = (non_pad == tokenizer.eos_token_id).nonzero()
            count = int(eos[0]) + 1 if len(eos) else int(non_pad.numel())
            samples.append(
                Sample(
                    prompt_index=start + row // k,
                    sample_index=row % k,
                    text=transcript.trim(text) if stops else text.strip(),
                    token_count=count,
                )
            )
        reporter.progress(progress_offset + start + len(batch), total, "generating")
    return samples


class LocalSampler(Sampler):
    """The ``transformers`` generation backend: the policy loaded on the worker, sampled with :func:`generate`.

    Args:
        config: sampling parameters.
        model_name: the policy to load (default ``config.model``); a GGUF file is converted on first use.
        models_dir: where ``demo://`` and converted GGUF models live.
        reporter: progress of that conversion.
    """

    local_model = True

    def __init__(
        self,
        config: GenerationConfig,
        model_name: str | None = None,
        models_dir: Path | None = None,
        reporter: Reporter | None = None,
    ) -> None:
        self.config = config
        self.model, self.tokenizer = load_causal_lm(model_name or config.model, models_dir, reporter)
        self.prompt_format = transcript.prompt_format(self.tokenizer)

    def __call__(
        self,
        prompts: Sequence[Conversation],
        *,
        num_samples: int | None = None,
        reporter: Reporter | None = None,
        progress_offset: int = 0,
        progress_total: int | None = None,
    ) -> list[Sample]:
        """Sample with :func:`generate` (see there)."""
        return generate(
            self.model,
            self.tokenizer,
            list(prompts),
            self.config,
            num_samples=num_samples,
            reporter=reporter,
            progress_offset=progress_offset,
            progress_total=progress_total,
        )
