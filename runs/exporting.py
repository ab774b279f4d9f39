"""A run's AI-labelled preferences as a Hugging Face ``datasets.Dataset`` in TRL's preference formats.

One row per comparison of the run with ``purpose="train"``:

* standard format: ``prompt`` (text), ``chosen``, ``rejected`` (texts);
* conversational format: ``prompt`` (list of ``{role, content}`` messages), ``chosen`` and ``rejected``
  (one assistant message each);

plus judge metadata columns (:func:`metadata_features`): the averaged probability ``p_a`` (mean over the
comparison's judgments of P(A preferred), each already averaged over both presentation orders), its
``confidence`` = |p_a - 0.5| * 2, ``principle``, ``rationale``, ``position_consistent``, ``judge``,
``ai_verdict``, the final human label ``human_label`` (a reviewer's latest adjudication,
:mod:`runs.audit.adjudication`, else the human majority, :func:`training.judge_conventions.human_majority`: an
even split is ``tie``), ``adjudicated`` (whether a reviewer settled it), ``human_votes`` (number of non-skip
human labels), ``label_source`` (``ai`` or ``human``), ``chosen_side`` (A or B) and ``judge_votes``: with a
panel of judges (``judge.panel``, :mod:`training.panel`) each judge's vote, ``{judge, principle, verdict, p_a}``
per judge and principle (empty for a one-judge run; ``judge``, ``p_a`` and ``ai_verdict`` are then the panel's).
Both formats are accepted unchanged by TRL's ``RewardTrainer`` and ``DPOTrainer`` (extra columns are ignored).

Who decides chosen vs rejected: the AI judge's verdicts (majority of A/B verdicts over the comparison's
judgments; ties, failures and even splits are left out). With ``prefer_human_labels`` (a run's
``reward_model.prefer_human_labels``, default on) a comparison with human labels is decided by its final human
label instead: the reviewer's decision where the pair was adjudicated, else the majority (a human tie or an even
split leaves it out).

The reward-model stage builds its training data with :func:`preference_dataset`.

Auditors' corrected responses (:mod:`runs.audit.ratings`) export on their own (:func:`correction_dataset`): as
SFT demonstrations in TRL's formats (``prompt``/``completion`` text, or conversational ``messages`` ending with
the correction as the assistant turn) and as preference pairs (``prompt``/``chosen``/``rejected`` with the
correction chosen over the response the auditor found worse). Every row says it is human-written: ``source``
``human`` (who wrote the completion or chosen text) and ``label_source`` ``human``.
"""
from __future__ import annotations

import shutil
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from django.db.models import Count

from runs.models import (
    Adjudication,
    AuditItem,
    Comparison,
    CorrectedResponse,
    HumanChoice,
    HumanLabel,
    Judgment,
    Run,
    Verdict,
)
from training.chat import as_messages
from training.judge_conventions import human_majority
from training.pairing import degenerate_reason

FORMATS = ("disk", "jsonl")
#: What a run's export holds: its preferences, or its corrected responses as SFT demonstrations or as pairs.
DATASETS = {
    "preferences": "Preferences (AI verdicts and human labels)",
    "sft": "Corrected responses as SFT demonstrations",
    "correction_pairs": "Corrected responses as preference pairs (over the worse response)",
}


@dataclass
class PreferenceFilters:
    """Which preferences to export.

    Parameters:
        min_confidence: keep AI-decided rows with confidence |p_a - 0.5| * 2 >= this (0..1).
        position_consistent_only: keep AI-decided rows only where every judgment agreed across both orders.
        human_verified_only: keep only rows with at least one non-skip human label.
        split: ``train`` or ``eval`` (the prompt's split), or "" for both.
        prefer_human_labels: let the human majority decide where humans labelled; None = the run's
            ``reward_model.prefer_human_labels`` (default True).
        exclude_comparisons: comparison ids (or a subquery of them) to leave out, e.g. the pairs an auditor
            has still to label blind (:func:`runs.audit.blind.blinded_comparison_ids`).

    Human-decided rows are not subject to the two AI filters: a human's label does not depend on the judge's
    confidence or consistency.
    """

    min_confidence: float = 0.0
    position_consistent_only: bool = False
    human_verified_only: bool = False
    split: str = ""
    prefer_human_labels: bool | None = None
    exclude_comparisons: object = None

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.min_confidence) <= 1.0:
            raise ValueError(f"min_confidence must be between 0 and 1; got {self.min_confidence}")
        if self.split not in ("", "train", "eval"):
            raise ValueError(f"split must be train, eval or empty; got {self.split!r}")

    @classmethod
    def from_run_config(cls, run: Run, **overrides) -> PreferenceFilters:
        """The filters a run's ``reward_model`` config asks for (min_confidence, position_consistent_only,
        prefer_human_labels), with ``overrides``."""
        rm = run.run_config.reward_model
        values = {
            "min_confidence": rm.min_confidence,
            "position_consistent_only": rm.position_consistent_only,
            "prefer_human_labels": rm.prefer_human_labels,
        }
        return cls(**{**values, **overrides})


def _features(conversational: bool):
    from datasets import Features, Value

    message = {"role": Value("string"), "content": Value("string")}
    text = [message] if conversational else Value("string")
    return Features({"prompt": text, "chosen": text, "rejected": text, **metadata_features()})


def metadata_features() -> dict:
    """The judge metadata columns and their ``datasets`` types."""
    from datasets import Value

    return {
        "comparison_id": Value("int64"),
        "prompt_id": Value("int64"),
        "split": Value("string"),
        "p_a": Value("float64"),
        "confidence": Value("float64"),
        "principle": Value("string"),
        "rationale": Value("string"),
        "position_consistent": Value("bool"),
        "judge": Value("string"),
        "ai_verdict": Value("string"),
        "human_label": Value("string"),
        "human_votes": Value("int32"),
        "adjudicated": Value("bool"),
        "label_source": Value("string"),
        "chosen_side": Value("string"),
        "judge_votes": [{"judge": Value("string"), "principle": Value("string"), "verdict": Value("string"),
                         "p_a": Value("float64")}],
    }


def preference_features(conversational: bool = False):
    """The ``datasets.Features`` of :func:`preference_dataset` (also for an empty run)."""
    return _features(conversational)


def preference_rows(run: Run, filters: PreferenceFilters | None = None, *, conversational: bool = False) -> list[dict]:
    """The rows of :func:`preference_dataset` as plain dicts (ordered by comparison id)."""
    filters = filters or PreferenceFilters.from_run_config(run)
    prefer_human = (
        PreferenceFilters.from_run_config(run).prefer_human_labels
        if filters.prefer_human_labels is None else filters.prefer_human_labels
    )
    comparisons = Comparison.objects.filter(run=run, purpose="train")
    if filters.split:
        comparisons = comparisons.filter(prompt__split=filters.split)
    if filters.exclude_comparisons is not None:
        comparisons = comparisons.exclude(id__in=filters.exclude_comparisons)
    judgments = defaultdict(list)
    for j in (
        Judgment.objects.filter(comparison__in=comparisons)
        .values("comparison_id", "p_a", "verdict", "position_consistent", "rationale", "principle__name",
                "judge_id")
        .order_by("comparison_id", "id")
    ):
        judgments[j["comparison_id"]].append(j)
    humans: dict[int, Counter] = defaultdict(Counter)
    for h in (
        HumanLabel.objects.filter(comparison__in=comparisons).exclude(choice=HumanChoice.SKIP)
        .values("comparison_id", "choice").annotate(n=Count("id"))
    ):
        humans[h["comparison_id"]][h["choice"]] += h["n"]
    votes = defaultdict(list)  # a panel's judges' votes (none without a panel)
    for v in (
        Judgment.votes.filter(comparison__in=comparisons)
        .values("comparison_id", "judge_id", "principle__name", "verdict", "p_a")
        .order_by("comparison_id", "principle_id", "id")
    ):
        votes[v["comparison_id"]].append({"judge": v["judge_id"], "principle": v["principle__name"] or "",
                                          "verdict": v["verdict"], "p_a": v["p_a"]})
    decided = dict(  # each comparison's latest adjudication (ascending: the latest is written last)
        Adjudication.objects.filter(comparison__in=comparisons).order_by("comparison_id", "created_at", "pk")
        .values_list("comparison_id", "choice")
    )
    rows = []
    for c in comparisons.values(
        "id", "prompt_id", "prompt__text", "prompt__messages", "prompt__split", "completion_a__text",
        "completion_b__text",
    ).order_by("id"):
        if degenerate_reason(c["completion_a__text"], c["completion_b__text"]):
            continue  # identical or empty replies: no preference to learn (older runs formed such pairs)
        row = _row(c, judgments.get(c["id"], []), humans.get(c["id"], Counter()), prefer_human, conversational,
                   decided.get(c["id"], ""))
        if row is None or not _keep(row, filters):
            continue
        row["judge_votes"] = votes.get(c["id"], [])
        rows.append(row)
    return rows


def preference_dataset(run: Run, filters: PreferenceFilters | None = None, *, conversational: bool = False):
    """The run's preferences as a ``datasets.Dataset`` in TRL's standard (default) or conversational
    preference format, with judge metadata columns (see the module docstring).

    Args:
        run: the run whose ``purpose="train"`` comparisons are exported.
        filters: :class:`PreferenceFilters`; None = the run's reward-model config.
        conversational: messages instead of plain text for prompt/chosen/rejected.

    Returns:
        A ``datasets.Dataset`` (empty, with the same columns, when nothing qualifies).
    """
    from datasets import Dataset

    rows = preference_rows(run, filters, conversational=conversational)
    features = _features(conversational)
    columns = {name: [row[name] for row in rows] for name in features}
    return Dataset.from_dict(columns, features=features)


def save_preferences(dataset, path: Path | str, fmt: str = "disk") -> Path:
    """Write ``dataset`` with ``Dataset.save_to_disk`` (``fmt="disk"``, a folder) or as JSON lines
    (``fmt="jsonl"``, one row per line; an empty dataset gives an empty file).

    Raises:
        ValueError: unknown ``fmt``.
    """
    path = Path(path)
    if fmt == "disk":
        if path.exists():
            shutil.rmtree(path)
        # one shard even when empty: datasets writes zero shards for an empty dataset, which it cannot load back
        dataset.save_to_disk(str(path), num_shards=1 if len(dataset) == 0 else None)
    elif fmt == "jsonl":
        path.parent.mkdir(parents=True, exist_ok=True)
        if len(dataset):
            dataset.to_json(str(path), lines=True, force_ascii=False)
        else:
            path.write_text("", encoding="utf-8")
    else:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    return path


def zip_folder(folder: Path, handle) -> None:
    """Write ``folder`` (e.g. a ``save_to_disk`` output) as a zip archive into the binary file ``handle``;
    paths inside start with the folder's name."""
    with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, Path(folder.name) / file.relative_to(folder))


def _row(c: dict, judgments: list[dict], humans: Counter, prefer_human: bool, conversational: bool,
         decided: str = "") -> dict | None:
    valid = [j for j in judgments if j["verdict"] in (Verdict.A, Verdict.B, Verdict.TIE)]
    votes = Counter(j["verdict"] for j in valid)
    ai = "A" if votes["A"] > votes["B"] else "B" if votes["B"] > votes["A"] else ""
    ai_verdict = (ai or "tie") if valid else ""  # an even A/B split counts as a tie
    probs = [j["p_a"] for j in valid if j["p_a"] is not None]
    p_a = sum(probs) / len(probs) if probs else None
    consistency = [j["position_consistent"] for j in valid if j["position_consistent"] is not None]
    human = decided or human_majority(humans)
    if prefer_human and (humans or decided):
        side, source = (human if human in ("A", "B") else ""), "human"
    else:
        side, source = ai, "ai"
    if not side:
        return None
    a, b = c["completion_a__text"], c["completion_b__text"]
    chosen, rejected = (a, b) if side == "A" else (b, a)
    if conversational:
        prompt = as_messages(c["prompt__messages"] or c["prompt__text"])
        chosen = [{"role": "assistant", "content": chosen}]
        rejected = [{"role": "assistant", "content": rejected}]
    else:
        prompt = c["prompt__text"]
    names = list(dict.fromkeys(j["principle__name"] for j in valid if j["principle__name"]))
    if len(valid) == 1:
        rationale = valid[0]["rationale"]
    else:
        rationale = "\n\n".join(
            f"[{j['principle__name'] or 'judge'}] {j['rationale']}" for j in valid if j["rationale"]
        )
    return {
        "prompt": prompt,
        "chosen": chosen,
        "rejected": rejected,
        "comparison_id": c["id"],
        "prompt_id": c["prompt_id"],
        "split": c["prompt__split"],
        "p_a": p_a,
        "confidence": abs(p_a - 0.5) * 2 if p_a is not None else None,
        "principle": "; ".join(names),
        "rationale": rationale,
        "position_consistent": all(consistency) if consistency else None,
        "judge": "; ".join(dict.fromkeys(j["judge_id"] for j in valid)),
        "ai_verdict": ai_verdict,
        "human_label": human,
        "human_votes": sum(humans.values()),
        "adjudicated": bool(decided),
        "label_source": source,
        "chosen_side": side,
    }


def _keep(row: dict, filters: PreferenceFilters) -> bool:
    if filters.human_verified_only and not (row["human_votes"] or row["adjudicated"]):
        return False
    if row["label_source"] == "ai":
        if filters.min_confidence and (row["confidence"] is None or row["confidence"] < filters.min_confidence):
            return False
        if filters.position_consistent_only and row["position_consistent"] is not True:
            return False
    return True





def correction_features(kind: str, conversational: bool = False):
    """The ``datasets.Features`` of :func:`correction_dataset` (also for a run without corrections).

    Raises:
        ValueError: ``kind`` is neither ``sft`` nor ``correction_pairs``.
    """
    from datasets import Features, Value

    message = {"role": Value("string"), "content": Value("string")}
    if kind == "sft":
        texts = {"messages": [message]} if conversational else {"prompt": Value("string"),
                                                                  "completion": Value("string")}
    elif kind == "correction_pairs":
        text = [message] if conversational else Value("string")
        texts = {"prompt": text, "chosen": text, "rejected": text}
    else:
        raise ValueError(f"a corrections export is 'sft' or 'correction_pairs'; got {kind!r}")
    return Features({
        **texts,
        "comparison_id": Value("int64"),
        "prompt_id": Value("int64"),
        "split": Value("string"),
        "principle": Value("string"),
        "annotator": Value("string"),
        "rewrites": Value("string"),
        "edited": Value("bool"),
        "source": Value("string"),
        "label_source": Value("string"),
    })


def correction_rows(run: Run, kind: str = "sft", *, conversational: bool = False, split: str = "",
                    exclude_comparisons=None) -> list[dict]:
    """The auditors' corrected responses of ``run`` as rows of :func:`correction_dataset`, one per correction
    (several auditors may correct the same pair), ordered by comparison and correction.

    Args:
        kind: ``sft``: demonstrations, the prompt and the correction as its answer (TRL's prompt-completion
            format; conversational: ``messages``, the prompt's turns then the correction as the assistant turn).
            ``correction_pairs``: the correction as ``chosen`` over the response the auditor found worse as
            ``rejected`` (TRL's preference format); a correction identical to that response is left out.
        conversational: chat messages instead of plain text.
        split: ``train`` or ``eval`` (the prompt's split), or "" for both.
        exclude_comparisons: comparison ids (or a subquery) to leave out, e.g. the pairs the requesting auditor
            has still to label blind (:func:`runs.audit.blind.blinded_comparison_ids`).

    Columns besides the texts: ``comparison_id``, ``prompt_id``, ``split``, ``principle`` (of the audited
    judgment), ``annotator`` (the auditor's username), ``rewrites`` (A or B: the response rewritten), ``edited``
    (whether the correction differs from that response), ``source`` ``human`` (the completion or chosen text is
    human-written) and ``label_source`` ``human``.

    Raises:
        ValueError: an unknown ``kind`` or ``split``.
    """
    if kind not in ("sft", "correction_pairs"):
        raise ValueError(f"a corrections export is 'sft' or 'correction_pairs'; got {kind!r}")
    if split not in ("", "train", "eval"):
        raise ValueError(f"split must be train, eval or empty; got {split!r}")
    corrections = CorrectedResponse.objects.filter(label__comparison__run=run)
    if split:
        corrections = corrections.filter(label__comparison__prompt__split=split)
    if exclude_comparisons is not None:
        corrections = corrections.exclude(label__comparison_id__in=exclude_comparisons)
    principles = dict(AuditItem.objects.filter(run=run).values_list("comparison_id", "judgment__principle__name"))
    rows = []
    for c in corrections.values(
        "text", "rewrites", "label__comparison_id", "label__comparison__prompt_id",
        "label__comparison__prompt__text", "label__comparison__prompt__messages", "label__comparison__prompt__split",
        "label__comparison__completion_a__text", "label__comparison__completion_b__text",
        "label__auditor__username", "label__external_annotator",
    ).order_by("label__comparison_id", "pk"):
        prompt_text, messages = c["label__comparison__prompt__text"], c["label__comparison__prompt__messages"]
        responses = {"A": c["label__comparison__completion_a__text"], "B": c["label__comparison__completion_b__text"]}
        rewritten, worse = responses[c["rewrites"]], responses["B" if c["rewrites"] == "A" else "A"]
        correction = c["text"]
        row = {
            "comparison_id": c["label__comparison_id"],
            "prompt_id": c["label__comparison__prompt_id"],
            "split": c["label__comparison__prompt__split"],
            "principle": principles.get(c["label__comparison_id"]) or "",
            "annotator": c["label__auditor__username"] or c["label__external_annotator"],
            "rewrites": c["rewrites"],
            "edited": correction.strip() != rewritten.strip(),
            "source": "human",
            "label_source": "human",
        }
        prompt = as_messages(messages or prompt_text) if conversational else prompt_text
        if kind == "sft":
            texts = ({"messages": [*prompt, {"role": "assistant", "content": correction}]} if conversational
                     else {"prompt": prompt, "completion": correction})
        else:
            if degenerate_reason(correction, worse):
                continue  # the correction is the worse response itself: no preference to learn
            if conversational:
                texts = {"prompt": prompt, "chosen": [{"role": "assistant", "content": correction}],
                         "rejected": [{"role": "assistant", "content": worse}]}
            else:
                texts = {"prompt": prompt, "chosen": correction, "rejected": worse}
        rows.append({**texts, **row})
    return rows


def correction_dataset(run: Run, kind: str = "sft", *, conversational: bool = False, split: str = "",
                       exclude_comparisons=None):
    """:func:`correction_rows` as a ``datasets.Dataset`` with :func:`correction_features` (empty, with the same
    columns, when the run has no correction). Loads in TRL's ``SFTTrainer`` (``sft``) or ``DPOTrainer`` /
    ``RewardTrainer`` (``correction_pairs``) unchanged; extra columns are ignored there."""
    from datasets import Dataset

    rows = correction_rows(run, kind, conversational=conversational, split=split,
                           exclude_comparisons=exclude_comparisons)
    features = correction_features(kind, conversational)
    return Dataset.from_dict({name: [row[name] for row in rows] for name in features}, features=features)


def export_dataset(run: Run, kind: str, filters: PreferenceFilters, *, conversational: bool = False):
    """The dataset a run's export page or API asks for: ``kind`` (a key of :data:`DATASETS`) ``preferences``
    (:func:`preference_dataset` with ``filters``), or the corrections as ``sft`` or ``correction_pairs``
    (:func:`correction_dataset`; of the filters only ``split`` and ``exclude_comparisons`` apply).

    Raises:
        ValueError: an unknown ``kind``.
    """
    if kind == "preferences":
        return preference_dataset(run, filters, conversational=conversational)
    if kind not in DATASETS:
        raise ValueError(f"dataset must be one of {', '.join(DATASETS)}; got {kind!r}")
    return correction_dataset(run, kind, conversational=conversational, split=filters.split,
                              exclude_comparisons=filters.exclude_comparisons)


def export_stem(run: Run, kind: str, style: str) -> str:
    """The download's file name without its extension: ``run-<id>-preferences-<style>``,
    ``run-<id>-corrections-sft-<style>`` or ``run-<id>-corrections-pairs-<style>``."""
    name = {"preferences": "preferences", "sft": "corrections-sft", "correction_pairs": "corrections-pairs"}[kind]
    return f"run-{run.pk}-{name}-{style}"
