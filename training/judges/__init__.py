"""AI judges: backends that score one rendered judge prompt (one order of one comparison).

The labeling protocol (both orders, averaging, principle sampling, self-consistency) lives in
:mod:`training.labeling`; backends only turn prompts into probabilities and rationales.

:data:`JUDGE_BACKENDS` is the registry of backends: ``judge.backend`` names an entry, and the entry's class
declares what the backend needs and does (:class:`~training.judges.base.Judge`'s capabilities). Callers ask
``JUDGE_BACKENDS.get(config.backend).needs_endpoint`` and the like instead of comparing names; a new backend
is its module plus one line here (and the name in :class:`training.config.JudgeConfig`'s ``backend`` choices,
which a test keeps equal to the registry).
"""

from __future__ import annotations

from pathlib import Path

from training.backends import BackendRegistry, UnknownBackend
from training.config import JudgeConfig
from training.judges.base import Judge, JudgedPair, JudgeTask, OrderResult

__all__ = [
    "JUDGE_BACKENDS",
    "Judge",
    "JudgeTask",
    "JudgedPair",
    "OrderResult",
    "UnknownBackend",
    "build_judge",
    "judge_backend",
    "judge_id_for",
]

#: Judge backends by ``judge.backend`` name; classes are imported on first use.
JUDGE_BACKENDS: BackendRegistry[Judge] = BackendRegistry(
    "judge.backend",
    {
        "openai": "training.judges.openai_judge:OpenAIJudge",
        "transformers": "training.judges.transformers_judge:TransformersJudge",
        "reward_model": "training.judges.reward_model_judge:RewardModelJudge",
        "likelihood": "training.judges.likelihood_judge:LikelihoodJudge",
    },
)


def judge_backend(name: str) -> type[Judge]:
    """The judge class registered as ``name``, whose class attributes declare the backend's capabilities.

    Raises:
        UnknownBackend: no judge backend of that name (a :class:`ValueError`).
    """
    return JUDGE_BACKENDS.get(name)


def judge_id_for(config: JudgeConfig) -> str:
    """The stable identifier stored on a judgment: ``<backend>:<model>``, plus ``@<base_url>`` for endpoints.

    Computable without loading anything, so a resumed stage can tell what is already judged.
    """
    judge_id = f"{config.backend}:{config.model}"
    if judge_backend(config.backend).needs_endpoint:
        judge_id += f"@{config.base_url.rstrip('/')}"
    return judge_id[:300]


def build_judge(config: JudgeConfig, models_dir: Path | None = None) -> Judge:
    """Build the judge backend a config names (loads the model for local backends).

    Args:
        config: the run's judge config.
        models_dir: the data directory's models folder, for ``demo://`` model names.

    Raises:
        UnknownBackend: an unknown backend (a :class:`ValueError`).
        ValueError: an unset API-key environment variable.
        training.modeling.ModelNotFound: a local model that does not exist.
    """
    return judge_backend(config.backend).from_config(config, models_dir)
