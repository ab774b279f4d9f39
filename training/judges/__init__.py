"""AI judges: backends that score one rendered judge prompt (one order of one comparison).

The labeling protocol (both orders, averaging, principle sampling, self-consistency) lives in
:mod:`training.labeling`; backends only turn prompts into probabilities and rationales.
"""

from __future__ import annotations

from pathlib import Path

from training.config import JudgeConfig
from training.judges.base import Judge, JudgedPair, JudgeTask, OrderResult

__all__ = ["Judge", "JudgeTask", "JudgedPair", "OrderResult", "build_judge", "judge_id_for"]


def judge_id_for(config: JudgeConfig) -> str:
    """The stable identifier stored on a judgment: ``<backend>:<model>``, plus ``@<base_url>`` for endpoints.

    Computable without loading anything, so a resumed stage can tell what is already judged.
    """
    judge_id = f"{config.backend}:{config.model}"
    if config.backend == "openai":
        judge_id += f"@{config.base_url.rstrip('/')}"
    return judge_id[:300]


def build_judge(config: JudgeConfig, models_dir: Path | None = None) -> Judge:
    """Build the judge backend a config names (loads the model for local backends).

    Args:
        config: the run's judge config.
        models_dir: the data directory's models folder, for ``demo://`` model names.

    Raises:
        ValueError: an unknown backend, or an unset API-key environment variable.
        training.modeling.ModelNotFound: a local model that does not exist.
    """
    if config.backend == "openai":
        from training.judges.openai_judge import OpenAIJudge

        return OpenAIJudge(config)
    if config.backend == "transformers":
        from training.judges.transformers_judge import TransformersJudge

        return TransformersJudge(config, models_dir)
    if config.backend == "reward_model":
        from training.judges.reward_model_judge import RewardModelJudge

        return RewardModelJudge(config, models_dir)
    if config.backend == "likelihood":
        from training.judges.likelihood_judge import LikelihoodJudge

        return LikelihoodJudge(config, models_dir)
    raise ValueError(
        f"judge.backend: unknown backend {config.backend!r} (openai, transformers, reward_model, likelihood)"
    )
