from django.contrib import admin

from runs import models


@admin.register(models.PromptSet)
class PromptSetAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "source", "created_by", "created_at")
    search_fields = ("name", "source")


@admin.register(models.Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ("prompt_set", "index", "split", "text")
    list_filter = ("split", "prompt_set")
    search_fields = ("text",)
    list_select_related = ("prompt_set",)


@admin.register(models.ReferencePair)
class ReferencePairAdmin(admin.ModelAdmin):
    list_display = ("prompt", "human_choice", "source")
    raw_id_fields = ("prompt",)


class StageRunInline(admin.TabularInline):
    model = models.StageRun
    extra = 0
    fields = ("stage", "status", "progress_done", "progress_total", "started_at", "finished_at", "job_id")
    readonly_fields = fields


@admin.register(models.Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "status", "current_stage", "owner", "constitution_version", "created_at")
    list_filter = ("status", "current_stage")
    search_fields = ("name",)
    inlines = [StageRunInline]


@admin.register(models.StageRun)
class StageRunAdmin(admin.ModelAdmin):
    list_display = ("run", "stage", "status", "progress_done", "progress_total", "attempt", "started_at")
    list_filter = ("stage", "status")


@admin.register(models.Completion)
class CompletionAdmin(admin.ModelAdmin):
    list_display = ("run", "prompt", "source", "sample_index", "model", "token_count")
    list_filter = ("source",)
    raw_id_fields = ("run", "prompt")


@admin.register(models.Comparison)
class ComparisonAdmin(admin.ModelAdmin):
    list_display = ("id", "run", "prompt", "purpose")
    raw_id_fields = ("run", "prompt", "completion_a", "completion_b")


@admin.register(models.Judgment)
class JudgmentAdmin(admin.ModelAdmin):
    list_display = ("comparison", "principle", "judge_id", "p_a", "verdict", "position_consistent", "panel_vote",
                    "error")
    list_filter = ("verdict", "position_consistent", "panel_vote")
    raw_id_fields = ("comparison", "principle")

    def get_queryset(self, request):
        """Verdicts and a panel's judges' votes alike (``Judgment.objects`` holds verdicts only)."""
        return models.Judgment.all_rows.all()


class ResponseRatingInline(admin.TabularInline):
    model = models.ResponseRating
    extra = 0
    raw_id_fields = ("principle",)


class CorrectedResponseInline(admin.StackedInline):
    model = models.CorrectedResponse
    extra = 0


@admin.register(models.HumanLabel)
class HumanLabelAdmin(admin.ModelAdmin):
    list_display = ("comparison", "auditor", "external_annotator", "choice", "confidence", "rationale_flag")
    list_filter = ("choice", "rationale_flag")
    raw_id_fields = ("comparison",)
    inlines = [ResponseRatingInline, CorrectedResponseInline]


@admin.register(models.AuditItem)
class AuditItemAdmin(admin.ModelAdmin):
    list_display = ("run", "comparison", "stratum", "created_at")
    list_filter = ("stratum",)
    raw_id_fields = ("comparison", "judgment")


@admin.register(models.AuditPlan)
class AuditPlanAdmin(admin.ModelAdmin):
    list_display = ("run", "mode", "overlap", "review_ai_disagreements", "collect_ratings", "collect_corrections",
                    "updated_by", "updated_at")
    list_filter = ("mode",)
    raw_id_fields = ("run",)
    filter_horizontal = ("auditors",)


@admin.register(models.Adjudication)
class AdjudicationAdmin(admin.ModelAdmin):
    """Decisions are history: shown, never edited here (a new decision is made on the review page)."""

    list_display = ("comparison", "choice", "reason", "reviewer", "created_at")
    list_filter = ("choice", "reason")
    raw_id_fields = ("comparison",)

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(models.MetricPoint)
class MetricPointAdmin(admin.ModelAdmin):
    list_display = ("run", "stage", "name", "step", "value")
    list_filter = ("stage", "name")


@admin.register(models.Artifact)
class ArtifactAdmin(admin.ModelAdmin):
    list_display = ("run", "kind", "name", "path", "created_at")
    list_filter = ("kind",)
