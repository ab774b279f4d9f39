"""The data of RLAIF runs: prompt sets, runs and their stages, completions, comparisons, AI judgments,
human labels, metrics and artifacts.

Every table a job writes has a unique constraint on its natural key so that re-running a job after a crash
or a cancel continues where it stopped and never duplicates a row.
"""
from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from constitutions.models import ConstitutionVersion, Principle
from rlaif_site.fields import (
    NulFreeCharField,
    NulFreeJSONField,
    NulFreeTextField,
    RedactedCharField,
    RedactedJSONField,
    RedactedTextField,
)
from runs.stages.registry import STAGES, pipeline_position

UID_HELP = ("Unique across databases: names the row's RQ jobs and artifact folders, so two databases that share "
            "a Redis or a STUDIO_DATA_DIR never mix them up.")

# --- Prompt sets ---------------------------------------------------------------------------------


class PromptSet(models.Model):
    class Status(models.TextChoices):
        IMPORTING = "importing", "Importing"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    name = NulFreeCharField(max_length=200, unique=True)
    description = NulFreeTextField(blank=True)
    source = NulFreeCharField(max_length=500, blank=True, help_text="File name or dataset id it came from.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    status = NulFreeCharField(max_length=20, choices=Status.choices, default=Status.READY)
    import_report = NulFreeJSONField(default=dict, blank=True)
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False, help_text=UID_HELP)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    @property
    def key(self) -> str:
        """``<pk>-<first 8 hex digits of uid>``: names its import job, unique across databases."""
        return f"{self.pk}-{self.uid.hex[:8]}"

    def mark_importing(self, report: dict) -> None:
        """An import into the set was queued: the set is ``importing``, its report starts as ``report``."""
        self.status = self.Status.IMPORTING
        self.import_report = report
        self.save(update_fields=["status", "import_report"])

    def mark_import_failed(self, error: dict) -> None:
        """The import failed: the set is ``failed`` and its report keeps what it had, with ``error`` added.
        Written with ``update()``, so a set deleted meanwhile is no error."""
        self.status = self.Status.FAILED
        self.import_report = {**self.import_report, "error": error}
        PromptSet.objects.filter(pk=self.pk).update(status=self.status, import_report=self.import_report)


class Split(models.TextChoices):
    TRAIN = "train", "Train"
    EVAL = "eval", "Eval"


class Prompt(models.Model):
    """One prompt: plain ``text``, or chat ``messages`` (list of {role, content}) with ``text`` rendered
    from them for display and search."""

    prompt_set = models.ForeignKey(PromptSet, on_delete=models.CASCADE, related_name="prompts")
    index = models.PositiveIntegerField(help_text="Row order within the set.")
    text = NulFreeTextField()
    messages = NulFreeJSONField(null=True, blank=True)
    metadata = NulFreeJSONField(default=dict, blank=True)
    split = NulFreeCharField(max_length=10, choices=Split.choices, default=Split.TRAIN)
    content_hash = NulFreeCharField(max_length=64)

    class Meta:
        ordering = ["prompt_set", "index"]
        constraints = [
            models.UniqueConstraint(fields=["prompt_set", "content_hash"], name="unique_prompt_content"),
            models.UniqueConstraint(fields=["prompt_set", "index"], name="unique_prompt_index"),
        ]

    def __str__(self) -> str:
        return self.text[:80]

    @property
    def conversation(self):
        """What generation and judges receive: the chat messages, or the plain text."""
        return self.messages if self.messages else self.text


class ReferencePair(models.Model):
    """Two responses to a prompt that came with the imported data, with the human preference when known
    (HH-RLHF chosen/rejected, PandaLM's votes). Used to measure judge-vs-human agreement."""

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="reference_pairs")
    response_a = NulFreeTextField()
    response_b = NulFreeTextField()
    human_choice = NulFreeCharField(max_length=4, blank=True, help_text="A, B, tie, or blank when unknown.")
    human_votes = NulFreeJSONField(null=True, blank=True, help_text="Individual annotators' choices (A/B/tie).")
    source = NulFreeCharField(max_length=100, blank=True)
    degenerate = NulFreeCharField(
        max_length=10, blank=True, default="",
        help_text="identical or empty (training.pairing.degenerate_reason): never judged, trained on or counted.",
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["prompt"], name="one_reference_pair_per_prompt")]


# --- Runs and stages -----------------------------------------------------------------------------


#: The pipeline's stages as choices (``Stage.REWARD_MODEL == "reward_model"``), in pipeline order, built from
#: :data:`runs.stages.registry.STAGES`.
Stage = models.TextChoices(
    "Stage", [(name.upper(), (name, spec.label)) for name, spec in STAGES.items()], module=__name__
)


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    WAITING = "waiting", "Waiting"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class StageStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    WAITING = "waiting", "Waiting"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.WAITING)


class RunQuerySet(models.QuerySet):
    def active(self):
        return self.filter(status__in=ACTIVE_STATUSES)


class RunTag(models.Model):
    """A label runs are grouped and filtered by on the run list (``baseline``, ``beta-sweep``…)."""

    name = NulFreeCharField(max_length=50, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Run(models.Model):
    """One RLAIF run: a pinned constitution version and prompt set, a validated config, and its stages."""

    name = NulFreeCharField(max_length=200)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="runs")
    #: ``rlaif``: the product's pipeline; ``external``: a user's own training script logging into the run
    #: through the API (``training/integrations/studio_callback.py``), pinned to no constitution or prompt set.
    kind = NulFreeCharField(max_length=10, choices=[("rlaif", "RLAIF pipeline"), ("external", "External script")],
                            default="rlaif", db_index=True)
    # Null only for external runs (kind="external"); every RLAIF run pins both.
    constitution_version = models.ForeignKey(ConstitutionVersion, null=True, blank=True, on_delete=models.PROTECT,
                                             related_name="runs")
    prompt_set = models.ForeignKey(PromptSet, null=True, blank=True, on_delete=models.PROTECT, related_name="runs")
    config = NulFreeJSONField(default=dict)
    status = NulFreeCharField(max_length=20, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True)
    current_stage = NulFreeCharField(max_length=20, choices=Stage.choices, blank=True)
    cancel_requested = models.BooleanField(default=False)
    gate_released = models.BooleanField(default=False, help_text="An operator let the run pass its audit gate.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False, help_text=UID_HELP)
    tags = models.ManyToManyField(RunTag, blank=True, related_name="runs")
    note = NulFreeTextField(blank=True, help_text="Free text: what the run tried, what came out of it.")

    objects = RunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.name}"

    @property
    def key(self) -> str:
        """``<pk>-<first 8 hex digits of uid>``: names the run's jobs and artifacts folder, unique across
        databases (run #1 of a SQLite database and run #1 of a PostgreSQL one may share a data directory)."""
        return f"{self.pk}-{self.uid.hex[:8]}"

    @property
    def artifacts_dir(self):
        """``ARTIFACTS_DIR / run-<key>``: the run's models, checkpoints, datasets and reports."""
        return settings.ARTIFACTS_DIR / f"run-{self.key}"

    @property
    def run_config(self):
        """The stored config as a validated :class:`training.config.RunConfig`, upgraded from an older schema:
        the one way to read a run's settings (parsed on each access: a job reads it once and keeps it). An external
        run (its config is its own script's) reads as the defaults.

        Raises:
            training.config.ConfigError: the stored config does not validate even after upgrading.
        """
        from training.config import RunConfig

        if self.kind == "external":  # its config is its own script's, not ours: the studio's defaults stand in
            return RunConfig()
        return RunConfig.from_dict(self.config, stored=True)

    def ordered_stages(self):
        """This run's StageRun rows in pipeline order."""
        return sorted(self.stages.all(), key=lambda s: pipeline_position(s.stage))

    # --- transitions: conditional updates of this row alone, so the web process, workers and the recovery
    # monitor never overwrite each other's fields. Each sets the new values on this instance when it moves
    # the row, and returns whether it did (False: the row was not in the state the caller expected).

    def _move(self, fields: dict, **expected) -> bool:
        moved = bool(Run.objects.filter(pk=self.pk, **expected).update(**fields))
        if moved:
            for name, value in fields.items():
                setattr(self, name, value)
        return moved

    def mark_running(self, stage: str, at=None) -> None:
        """A worker started ``stage`` (at ``at``, default now): the run is running. Its start time stays the
        first stage's."""
        self._move({"status": RunStatus.RUNNING, "current_stage": stage,
                    "started_at": self.started_at or at or timezone.now()})

    def mark_waiting(self, stage: str) -> None:
        """The run waits at ``stage`` (its audit gate is not met, or its drift guard holds it)."""
        self._move({"status": RunStatus.WAITING, "current_stage": stage})

    def move_to(self, stage: str) -> None:
        """``stage`` is the run's next stage (about to be queued)."""
        self._move({"current_stage": stage})

    def finish(self, status: str, *, only_from: tuple[str, ...] | None = None) -> bool:
        """End the run with ``status`` (succeeded, failed or cancelled). A run that succeeded has no current
        stage.

        Args:
            only_from: end it only while its status is one of these (None: whatever its status).
        """
        fields = {"status": status, "finished_at": timezone.now()}
        if status == RunStatus.SUCCEEDED:
            fields["current_stage"] = ""
        return self._move(fields, **({"status__in": only_from} if only_from is not None else {}))

    def request_cancel(self) -> None:
        """Ask the run to stop: running stages see the flag at their next safe point."""
        self._move({"cancel_requested": True})

    def requeue(self) -> None:
        """Queue the run again (a resume): no cancel pending, not finished."""
        self._move({"status": RunStatus.QUEUED, "cancel_requested": False, "finished_at": None})

    def release_gate(self) -> None:
        """An operator let the run pass its audit gate."""
        self._move({"gate_released": True})

    @property
    def failed_judgments(self) -> int:
        """How many of the AI judge's judgments of this run's train comparisons failed."""
        return Judgment.objects.filter(comparison__run=self, comparison__purpose="train", verdict="").count()

    @property
    def status_display(self) -> str:
        """The status as pages show it: "Succeeded with 16 failed" when some judgments failed."""
        label = self.get_status_display()
        if self.status == RunStatus.SUCCEEDED and (failed := self.failed_judgments):
            return f"{label} with {failed} failed"
        return label


class StageRun(models.Model):
    """One stage of a run: its RQ job, status, progress and the tail of its log."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="stages")
    stage = NulFreeCharField(max_length=20, choices=Stage.choices)
    status = NulFreeCharField(max_length=20, choices=StageStatus.choices, default=StageStatus.PENDING)
    job_id = NulFreeCharField(max_length=100, blank=True)
    attempt = models.PositiveIntegerField(default=0)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(null=True, blank=True)
    message = RedactedCharField(max_length=500, blank=True)
    error = RedactedTextField(blank=True)
    log_tail = RedactedTextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    earlier_attempts_s = models.FloatField(
        default=0, help_text="Seconds the stage ran in its earlier attempts (before a resume or retry).")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "stage"], name="one_stage_row_per_run")]

    def __str__(self) -> str:
        return f"{self.run_id}:{self.stage}"

    @property
    def fraction(self) -> float | None:
        if not self.progress_total:
            return None
        return min(1.0, self.progress_done / self.progress_total)

    def attempt_seconds(self) -> float:
        """How long the current (or last) attempt ran: to its end, or to its last heartbeat when its worker
        was lost, or to now while it runs; 0 before any start."""
        if not self.started_at:
            return 0.0
        end = self.finished_at or (self.heartbeat_at if self.status != StageStatus.RUNNING else None) or timezone.now()
        return max(0.0, (end - self.started_at).total_seconds())

    @property
    def status_display(self) -> str:
        """The status as pages show it: a label stage that succeeded although some judgments failed says
        "Succeeded with N failed"."""
        label = self.get_status_display()
        if self.status == StageStatus.SUCCEEDED and self.stage == Stage.LABEL:
            failed = self.run.failed_judgments
            if failed:
                return f"{label} with {failed} failed"
        return label

    # --- transitions: conditional updates, like :class:`Run`'s ------------------------------------------

    def _move(self, fields: dict, **expected) -> bool:
        moved = bool(StageRun.objects.filter(pk=self.pk, **expected).update(**fields))
        if moved:
            for name, value in fields.items():
                setattr(self, name, value)
        return moved

    def mark_queued(self, job_id: str) -> None:
        """The stage's job ``job_id`` is about to be enqueued. The time of an earlier attempt adds to
        ``earlier_attempts_s`` (a resume's page shows the total), and ``heartbeat_at`` says when it was queued
        (recovery waits a grace period from there)."""
        self.earlier_attempts_s += self.attempt_seconds()
        self.status = StageStatus.QUEUED
        self.job_id = job_id
        self.error = ""
        self.finished_at = None
        self.heartbeat_at = timezone.now()
        self.save(update_fields=["status", "job_id", "error", "finished_at", "heartbeat_at", "earlier_attempts_s"])

    @classmethod
    def claim(cls, pk: int) -> bool:
        """Claim the queued stage ``pk`` for a worker: it is running, as a new attempt. Atomic: of several
        workers (or a cancel) racing for the row, one wins.

        Returns:
            Whether this caller got it (False: it was not queued any more).
        """
        now = timezone.now()
        return bool(cls.objects.filter(pk=pk, status=StageStatus.QUEUED).update(
            status=StageStatus.RUNNING, attempt=models.F("attempt") + 1, started_at=now, heartbeat_at=now,
            finished_at=None, error="", message="",
        ))

    def finish_attempt(self, status: str, error: str = "", message: str | None = None) -> bool:
        """Record how this attempt (``self.attempt``) ended, unless the row moved on meanwhile (re-queued by
        recovery and maybe taken by a later attempt, ended by a forced cancel).

        Args:
            status: succeeded, failed, cancelled, or waiting (the stage holds its run for an operator:
                :class:`runs.gate.Hold`).
            message: replaces the stage's message (None: cleared on success, else kept).

        Returns:
            Whether it was recorded.
        """
        fields = {"status": status, "finished_at": timezone.now(), "error": error}
        if message is not None:
            fields["message"] = message[:500]
        elif status == StageStatus.SUCCEEDED:
            fields["message"] = ""  # "generating…" and the like no longer describe a finished stage
        return self._move(fields, status=StageStatus.RUNNING, attempt=self.attempt)

    def mark_waiting(self, reason: str) -> None:
        """The stage waits for its run's audit gate; ``reason`` says what is missing."""
        self._move({"status": StageStatus.WAITING, "message": reason[:500]})

    def cancel(self, message: str | None = None) -> bool:
        """Cancel the stage if it is still in the status this instance has (a worker may have taken it).

        Args:
            message: replaces the stage's message (None keeps it).
        """
        fields = {"status": StageStatus.CANCELLED, "finished_at": timezone.now()}
        if message is not None:
            fields["message"] = message[:500]
        return self._move(fields, status=self.status)

    def fail(self, error: str, message: str = "") -> None:
        """End the stage as failed from outside its attempt (the recovery monitor gave up on it)."""
        self._move({"status": StageStatus.FAILED, "finished_at": timezone.now(), "error": error, "message": message})

    def reset(self) -> None:
        """Make the stage pending again, to run at the run's next resume."""
        self._move({"status": StageStatus.PENDING})


# --- AI feedback ----------------------------------------------------------------------------------


class CompletionSource(models.TextChoices):
    POLICY = "policy", "Policy sample"
    REFERENCE = "reference", "Reference pair (imported)"
    EVAL_REFERENCE = "eval_reference", "Evaluation: reference policy"
    EVAL_TUNED = "eval_tuned", "Evaluation: tuned policy"


class Completion(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="completions")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="completions")
    source = NulFreeCharField(max_length=20, choices=CompletionSource.choices, default=CompletionSource.POLICY)
    sample_index = models.PositiveIntegerField()
    text = RedactedTextField()
    model = NulFreeCharField(max_length=300)
    sampling_params = NulFreeJSONField(default=dict, blank=True)
    token_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["run", "prompt", "source", "sample_index"], name="one_completion_per_sample"
            )
        ]


class Comparison(models.Model):
    """Two completions of one prompt, in a fixed order (A = ``completion_a``)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="comparisons")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="comparisons")
    completion_a = models.ForeignKey(Completion, on_delete=models.CASCADE, related_name="+")
    completion_b = models.ForeignKey(Completion, on_delete=models.CASCADE, related_name="+")
    purpose = NulFreeCharField(max_length=10, default="train", help_text="train (labels for learning) or eval.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "completion_a", "completion_b"], name="one_comparison_per_pair")
        ]
        indexes = [models.Index(fields=["run", "purpose"])]


class Verdict(models.TextChoices):
    A = "A", "A"
    B = "B", "B"
    TIE = "tie", "Tie"
    FAILED = "", "Failed"


class VerdictManager(models.Manager):
    """``Judgment.objects``: the judgments that are a run's verdicts; a panel judge's vote is not one (its
    panel's verdict is), so every reader of verdicts (reward model, audit, pages, export) sees one judgment per
    unit with a panel as without."""

    def get_queryset(self):
        return super().get_queryset().filter(panel_vote=False)


class VoteManager(models.Manager):
    """``Judgment.votes``: the panel judges' own judgments (:mod:`training.panel`); ``create`` makes a vote."""

    def get_queryset(self):
        return super().get_queryset().filter(panel_vote=True)

    def create(self, **kwargs):
        return super().create(**{"panel_vote": True, **kwargs})


class Judgment(models.Model):
    """The AI judge's decision on one comparison under one principle.

    ``p_a_ab`` is P(A preferred) when A was shown first; ``p_a_ba`` is P(A preferred) when the order was
    swapped (already mapped back to A); ``p_a`` is their average (position debiasing, Lee et al. 2023).

    With a panel of judges (``judge.panel``, :mod:`training.panel`) each judge's judgment is a *vote*
    (``panel_vote``, under its own ``judge_id``; read them through ``Judgment.votes``) and the panel's verdict,
    aggregated from them, is the judgment (``judge_id`` ``panel:…``, its ``raw_outputs`` one entry per judge).
    ``Judgment.objects`` holds verdicts only; ``Judgment.all_rows`` both.
    """

    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="judgments")
    principle = models.ForeignKey(Principle, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    judge_id = NulFreeCharField(max_length=300)
    p_a_ab = models.FloatField(null=True, blank=True)
    p_a_ba = models.FloatField(null=True, blank=True)
    p_a = models.FloatField(null=True, blank=True, db_index=True)
    verdict = NulFreeCharField(max_length=4, choices=Verdict.choices, blank=True, db_index=True)
    position_consistent = models.BooleanField(null=True, blank=True)
    rationale = RedactedTextField(blank=True)
    raw_outputs = RedactedJSONField(default=list, blank=True)
    latency_ms = models.FloatField(default=0)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost = models.FloatField(default=0)
    error = RedactedTextField(blank=True)
    attempts = models.PositiveIntegerField(default=1)
    panel_vote = models.BooleanField(
        default=False, help_text="A panel judge's vote, aggregated into its panel's verdict (not a verdict itself).")
    judges_agree = models.BooleanField(
        null=True, blank=True, help_text="A panel's verdict: whether every judge gave the same verdict (None: one "
                                         "judge, or a vote failed).")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = VerdictManager()
    votes = VoteManager()
    all_rows = models.Manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["comparison", "principle", "judge_id"], name="one_judgment_per_principle_and_judge"
            ),
            models.UniqueConstraint(
                fields=["comparison", "judge_id"],
                condition=Q(principle__isnull=True),
                name="one_principle_free_judgment_per_judge",
            ),
        ]

    @property
    def failed(self) -> bool:
        return bool(self.error) and not self.verdict

    @property
    def panel_votes(self) -> list[dict]:
        """A panel verdict's votes, one dict per judge (``judge``, ``verdict``, ``p_a``…); [] for a one-judge
        judgment."""
        if not self.judge_id.startswith("panel:"):
            return []
        return [v for v in self.raw_outputs or [] if isinstance(v, dict) and "judge" in v]


class JudgeCacheEntry(models.Model):
    """One answered judge request, keyed by the SHA-256 of (judge, parameters, rendered prompt, sample), so the
    same request is never paid for twice (see :func:`training.labeling.request_key`)."""

    key = NulFreeCharField(max_length=64, unique=True)
    judge_id = NulFreeCharField(max_length=300)
    output = RedactedJSONField(help_text="The backend's OrderResult fields.")
    created_at = models.DateTimeField(auto_now_add=True)


class JudgeCharge(models.Model):
    """One paid call to a run's judge endpoint (the cost ledger): written as each answer arrives, whatever
    became of it (a verdict, an answer without one, a truncated one), so the ledger counts every paid attempt
    and an interrupted stage forgets nothing it paid for. The run's spend is the sum of its charges."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="judge_charges")
    judge_id = NulFreeCharField(max_length=300)
    request_key = NulFreeCharField(max_length=64, help_text="The request's cache key.")
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost = models.FloatField(default=0)
    outcome = NulFreeCharField(max_length=20, help_text="answer, no verdict, truncated or estimated.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["run", "judge_id"], name="judge_charge_run_idx")]


class HumanChoice(models.TextChoices):
    A = "A", "A"
    B = "B", "B"
    TIE = "tie", "Tie"
    SKIP = "skip", "Skip"


class HumanLabel(models.Model):
    """A human's preference on a comparison: an auditor in the browser, or an annotator of imported data
    (``external_annotator``, e.g. "pandalm:1")."""

    class Flag(models.TextChoices):
        NONE = "", "No flag"
        REASON_WRONG = "reason_wrong", "Verdict right, reason wrong"
        VERDICT_WRONG = "verdict_wrong", "Verdict wrong"

    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="human_labels")
    auditor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE)
    external_annotator = NulFreeCharField(max_length=100, blank=True)
    choice = NulFreeCharField(max_length=4, choices=HumanChoice.choices)
    confidence = models.PositiveSmallIntegerField(null=True, blank=True, help_text="1 (unsure) to 5 (certain).")
    note = NulFreeTextField(blank=True)
    seconds_spent = models.FloatField(default=0)
    shown_swapped = models.BooleanField(default=False, help_text="B was shown on the left.")
    rationale_flag = NulFreeCharField(max_length=20, choices=Flag.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["comparison", "auditor"], condition=Q(auditor__isnull=False), name="one_label_per_auditor"
            ),
            models.UniqueConstraint(
                fields=["comparison", "external_annotator"],
                condition=~Q(external_annotator=""),
                name="one_label_per_external_annotator",
            ),
            models.CheckConstraint(
                condition=Q(auditor__isnull=False) | ~Q(external_annotator=""), name="label_has_an_annotator"
            ),
        ]


class AuditItem(models.Model):
    """A comparison drawn into a run's audit sample, with the stratum it was drawn from."""

    class Stratum(models.TextChoices):
        RANDOM = "random", "Uniform random"
        UNCERTAIN = "uncertain", "Uncertain"
        DISAGREE = "disagree", "Judges disagree"
        CHOSEN = "chosen", "Chosen from the pair browser"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="audit_items")
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="audit_items")
    judgment = models.ForeignKey(Judgment, null=True, on_delete=models.CASCADE, related_name="audit_items")
    stratum = NulFreeCharField(max_length=10, choices=Stratum.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "comparison"], name="one_audit_item_per_comparison")]


class AuditPlan(models.Model):
    """How a run's audit sample is shared out among auditors, which pairs go to a reviewer, and the written
    guidelines auditors label by (:mod:`runs.audit.workload`, :mod:`runs.audit.adjudication`). A run without one
    audits as :attr:`Mode.EVERYONE` with no guidelines."""

    class Mode(models.TextChoices):
        EVERYONE = "everyone", "Every auditor labels every pair"
        POOLED = "pooled", "Pooled: any auditor, until each pair has its required labels"
        ASSIGNED = "assigned", "Assigned to named auditors"

    run = models.OneToOneField(Run, on_delete=models.CASCADE, related_name="audit_plan")
    mode = NulFreeCharField(max_length=10, choices=Mode.choices, default=Mode.EVERYONE)
    overlap = models.PositiveSmallIntegerField(
        default=1, help_text="Auditors per pair (pooled and assigned modes): the required overlap.")
    auditors = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="audit_plans",
                                      help_text="The named auditors the sample is shared among (assigned mode).")
    review_ai_disagreements = models.BooleanField(
        default=True, help_text="Also send pairs whose human majority differs from the AI verdict to review "
                                "(pairs whose auditors disagree always go).")
    guidelines = NulFreeTextField(blank=True, help_text="Markdown, shown beside each pair.")
    collect_ratings = models.BooleanField(
        default=False, help_text="Auditors may also rate each response from 1 to 5 under every enabled principle "
                                 "(optional for them).")
    collect_corrections = models.BooleanField(
        default=False, help_text="Auditors may also rewrite the better response (optional for them): exported as "
                                 "SFT demonstrations and as preference pairs over the worse response.")
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"audit plan of run {self.run_id}"

    @property
    def required_labels(self) -> int:
        """Counted (A/B/tie) labels a pair needs before it is complete: the overlap, or 1 in everyone mode."""
        return 1 if self.mode == self.Mode.EVERYONE else self.overlap


class AuditAssignment(models.Model):
    """An audit pair given to one auditor: by the plan (assigned mode), or served by the queue (pooled mode: a
    claim that holds the pair's place for :data:`runs.audit.workload.CLAIM_MINUTES` unless labelled)."""

    item = models.ForeignKey(AuditItem, on_delete=models.CASCADE, related_name="assignments")
    auditor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="audit_assignments")
    assigned_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "auditor"], name="one_assignment_per_auditor")]


class Adjudication(models.Model):
    """A reviewer's decision on an audited pair whose auditors disagreed (or whose human majority differs from
    the AI verdict): the pair's final human label for the gate, the agreement figures and the preference export.

    Rows are never changed: a new decision is a new row and the latest one counts. The auditors' labels stay
    as they were; ``labels`` keeps those the reviewer saw."""

    class Reason(models.TextChoices):
        AUDITORS_DISAGREE = "auditors", "Auditors disagree"
        AI_DISAGREES = "ai", "Human majority differs from the AI"
        REVIEWER = "reviewer", "Reviewer's own choice"

    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="adjudications")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    choice = NulFreeCharField(max_length=4, choices=[(HumanChoice.A, "A"), (HumanChoice.B, "B"),
                                                     (HumanChoice.TIE, "Tie")])
    note = NulFreeTextField(blank=True)
    reason = NulFreeCharField(max_length=10, choices=Reason.choices, blank=True)
    labels = NulFreeJSONField(default=list, blank=True,
                              help_text="The labels the reviewer saw: [{annotator, choice, confidence, note}].")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["comparison", "-created_at", "-pk"]
        indexes = [models.Index(fields=["comparison", "-created_at"], name="adjudication_latest_idx")]


class Side(models.TextChoices):
    """One response of a comparison, in the comparison's terms (A = ``completion_a``)."""

    A = "A", "A"
    B = "B", "B"


class ResponseRating(models.Model):
    """An auditor's rating of one response of an audited pair under one principle, from 1 (poor) to 5 (excellent),
    asked for when the run's audit plan collects ratings (:attr:`AuditPlan.collect_ratings`). Part of the
    auditor's label: it goes when the label goes, and an edit of the label replaces it."""

    label = models.ForeignKey(HumanLabel, on_delete=models.CASCADE, related_name="ratings")
    principle = models.ForeignKey(Principle, on_delete=models.PROTECT, related_name="+")
    side = NulFreeCharField(max_length=1, choices=Side.choices)
    score = models.PositiveSmallIntegerField(help_text="1 (poor) to 5 (excellent).")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["label", "principle", "side"], name="one_rating_per_principle_and_side"),
            models.CheckConstraint(condition=Q(score__gte=1, score__lte=5), name="rating_from_1_to_5"),
        ]


class CorrectedResponse(models.Model):
    """An auditor's rewrite of the better response of an audited pair (:attr:`AuditPlan.collect_corrections`):
    a human-written demonstration for SFT, and the chosen side of a preference pair over the response the
    auditor found worse (:func:`runs.exporting.correction_rows`). Part of the auditor's label."""

    label = models.OneToOneField(HumanLabel, on_delete=models.CASCADE, related_name="correction")
    rewrites = NulFreeCharField(max_length=1, choices=Side.choices,
                                help_text="The response rewritten: the one the auditor preferred (the other is worse).")
    text = NulFreeTextField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    @property
    def worse_side(self) -> str:
        """The response the correction is preferred over: the other side."""
        return Side.B if self.rewrites == Side.A else Side.A


class PairFlag(models.Model):
    """A pair marked for a closer look from the pair browser (one flag per user and pair; the browser filters
    on it). Not a label: it says nothing about which response is better."""

    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="flags")
    flagged_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    note = NulFreeCharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["comparison", "flagged_by"], name="one_pair_flag_per_user")]


class SavedPairView(models.Model):
    """A named pair-browser query of one user on one run (filters, search and display toggles), listed on the
    pair browser (:mod:`runs.pair_actions`)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_pair_views")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="+")
    name = NulFreeCharField(max_length=100)
    query = NulFreeCharField(max_length=2000, blank=True, help_text="The query string, without the leading '?'.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["user", "run", "name"], name="one_saved_view_per_name")]

    def __str__(self) -> str:
        return self.name


class AnchorSource(models.TextChoices):
    AI = "ai", "AI judgments"
    HUMAN = "human", "Human labels"


class AnchorCheck(models.Model):
    """One drift-guard check (:mod:`runs.drift`): the run's judge re-judged a seeded sample of an anchor
    run's pairs, and its verdicts were compared with the anchor's (AI majority or human labels). Pairs either
    side calls a tie, and failed re-judgments, are left out of the agreement and counted.

    The re-judged verdicts live here (``pairs``), not as :class:`Judgment` rows: they are neither the run's
    labels nor the anchor run's."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="anchor_checks")
    anchor_run = models.ForeignKey(Run, null=True, on_delete=models.SET_NULL, related_name="+")
    source = NulFreeCharField(max_length=10, choices=AnchorSource.choices)
    judge_id = NulFreeCharField(max_length=300, help_text="The judge checked (this run's).")
    anchor_judge_id = NulFreeCharField(max_length=300, blank=True, help_text="The anchor run's judge.")
    sampled = models.PositiveIntegerField(default=0, help_text="Anchor pairs re-judged.")
    n = models.PositiveIntegerField(default=0, help_text="Pairs compared: both verdicts A or B.")
    agree = models.PositiveIntegerField(default=0)
    ties = models.PositiveIntegerField(default=0, help_text="Left out: a tie on either side.")
    failed = models.PositiveIntegerField(default=0, help_text="Left out: re-judging failed.")
    agreement = models.FloatField(null=True, blank=True)
    low = models.FloatField(null=True, blank=True, help_text="95% Wilson interval.")
    high = models.FloatField(null=True, blank=True)
    threshold = models.FloatField(help_text="judge.anchor_min_agreement at the time.")
    passed = models.BooleanField(default=False)
    disagreeing = NulFreeJSONField(default=list, blank=True, help_text="Anchor comparison ids judged otherwise.")
    pairs = RedactedJSONField(default=list, blank=True,
                              help_text="Per re-judged pair: comparison, anchor verdict, verdict now, P(A).")
    released_at = models.DateTimeField(null=True, blank=True, help_text="An operator let the run go on anyway.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"anchor check of run {self.run_id} against run {self.anchor_run_id}"

    @property
    def holds(self) -> bool:
        """The check failed and no operator released it: the run waits."""
        return not self.passed and self.released_at is None

    def release(self) -> None:
        """An operator let the run go on although its judge disagrees with the anchor."""
        self.released_at = timezone.now()
        AnchorCheck.objects.filter(pk=self.pk, released_at__isnull=True).update(released_at=self.released_at)


# --- Metrics and artifacts -------------------------------------------------------------------------


class MetricPoint(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="metrics")
    stage = NulFreeCharField(max_length=20, choices=Stage.choices)
    step = models.IntegerField()
    name = NulFreeCharField(max_length=100)
    value = models.FloatField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "stage", "name", "step"], name="one_metric_value_per_step")
        ]
        indexes = [models.Index(fields=["run", "name", "step"], name="metric_curve_idx")]


class Artifact(models.Model):
    class Kind(models.TextChoices):
        SFT_MODEL = "sft_model", "SFT model"
        REWARD_MODEL = "reward_model", "Reward model"
        POLICY = "policy", "Tuned policy"
        CHECKPOINT = "checkpoint", "Checkpoint"
        DATASET = "dataset", "Dataset"
        REPORT = "report", "Report"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="artifacts")
    kind = NulFreeCharField(max_length=20, choices=Kind.choices)
    name = NulFreeCharField(max_length=200)
    path = NulFreeCharField(max_length=1000)
    metrics = NulFreeJSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "kind", "name"], name="one_artifact_per_name")]
