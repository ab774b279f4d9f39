"""The registry of generation backends: how candidate responses are sampled from the policy.

``generation.backend`` names an entry of :data:`GENERATION_BACKENDS`; the entry is a :class:`Sampler` class
that declares what the backend needs (``local_model``, ``needs_endpoint``). Callers ask the registry instead
of comparing names; a new backend is its :class:`Sampler` subclass plus one line here (and the name in
:class:`training.config.GenerationConfig`'s ``backend`` choices, which a test keeps equal to the registry).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

from training.backends import BackendRegistry, UnknownBackend

if TYPE_CHECKING:
    from training.config import GenerationConfig
    from training.generation import Conversation, Sample
    from training.progress import Reporter

__all__ = ["GENERATION_BACKENDS", "Sampler", "UnknownBackend", "generation_backend", "load_sampler"]


class Sampler(Protocol):
    """A generation backend, ready to sample: built with ``(config, model_name, models_dir, reporter)``
    (a local backend loads its model then, inside the job, never in the web process).

    Class attributes (capabilities of the backend):
        local_model: it loads the policy (``generation.model``, or the run's SFT model) on the worker:
            preflight checks the model, the generate stage fetches or converts it first, and the CPU time
            estimate applies.
        needs_endpoint: it calls an HTTP endpoint: ``generation.base_url`` is required and preflight checks
            that it answers; the model is the name the endpoint serves.

    Attributes:
        prompt_format: how prompts are rendered, ``chat_template`` or ``transcript`` (a base model;
            :mod:`training.transcript`); ``""`` when the endpoint renders them.
    """

    local_model: ClassVar[bool] = False
    needs_endpoint: ClassVar[bool] = False
    prompt_format: str = ""

    def __call__(
        self,
        prompts: Sequence[Conversation],
        *,
        num_samples: int | None = None,
        reporter: Reporter | None = None,
        progress_offset: int = 0,
        progress_total: int | None = None,
    ) -> list[Sample]:
        """Sample ``num_samples`` (default ``config.samples_per_prompt``) responses per prompt, ordered by
        prompt, then sample index; progress is reported as ``progress_offset + prompts done`` of
        ``progress_total``.

        Raises:
            training.progress.Cancelled: the reporter asked to stop.
        """
        ...


#: Generation backends by ``generation.backend`` name; classes are imported on first use.
GENERATION_BACKENDS: BackendRegistry[Sampler] = BackendRegistry(
    "generation.backend",
    {
        "transformers": "training.generation:LocalSampler",
        "openai": "training.generation_openai:OpenAISampler",
    },
)


def generation_backend(name: str) -> type[Sampler]:
    """The sampler class registered as ``name``, whose class attributes declare the backend's capabilities.

    Raises:
        UnknownBackend: no generation backend of that name (a :class:`ValueError`).
    """
    return GENERATION_BACKENDS.get(name)


def load_sampler(
    config: GenerationConfig,
    model_name: str | None = None,
    models_dir: Path | None = None,
    reporter: Reporter | None = None,
) -> Sampler:
    """The sampler of ``config.backend``, ready to call.

    Args:
        config: sampling parameters (and the endpoint, for endpoint backends).
        model_name: the policy to load (default ``config.model``), e.g. the run's SFT model.
        models_dir: where ``demo://`` and converted GGUF models live.
        reporter: progress of a first-use GGUF conversion.

    Raises:
        UnknownBackend: an unknown backend.
        training.modeling.ModelNotFound: a local model that does not exist.
    """
    return generation_backend(config.backend)(config, model_name, models_dir, reporter)
