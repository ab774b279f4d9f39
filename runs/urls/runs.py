from django.urls import path

from runs.views import artifacts, charts, judges, pairs, runs

urlpatterns = [
    path("", runs.run_list, name="list"),
    path("runs/launch/", runs.run_launch, name="launch"),
    path("runs/launch/estimate/", runs.launch_estimate, name="launch_estimate"),
    path("runs/compare/", charts.compare, name="compare"),
    path("runs/compare/charts.json", charts.compare_charts_json, name="compare_charts"),
    path("runs/charts.csv", charts.charts_csv, name="charts_csv"),
    path("judges/", judges.judge_list, name="judges"),
    path("judges/charts.json", judges.judges_json, name="judges_charts"),
    path("judges/charts.csv", judges.judges_csv, name="judges_csv"),
    path("runs/<int:pk>/", runs.run_detail, name="detail"),
    path("runs/<int:pk>/progress.json", runs.run_progress, name="progress"),
    path("runs/<int:pk>/charts.json", charts.run_charts_json, name="charts"),
    path("runs/<int:pk>/pairs/", pairs.pair_list, name="pairs"),
    path("runs/<int:pk>/pairs/bulk/", pairs.pair_bulk, name="pairs_bulk"),
    path("runs/<int:pk>/pairs/views/", pairs.saved_view_save, name="pairs_view_save"),
    path("runs/<int:pk>/pairs/views/<int:view_id>/delete/", pairs.saved_view_delete, name="pairs_view_delete"),
    path("runs/<int:pk>/cancel/", runs.run_cancel, name="cancel"),
    path("runs/<int:pk>/resume/", runs.run_resume, name="resume"),
    path("runs/<int:pk>/stages/<str:stage>/retry/", runs.stage_retry, name="retry_stage"),
    path("runs/<int:pk>/release-gate/", runs.run_release_gate, name="release_gate"),
    path("runs/<int:pk>/notes/", runs.run_notes, name="notes"),
    path("runs/<int:pk>/samples/", artifacts.run_samples, name="samples"),
    path("runs/<int:pk>/artifacts/<int:artifact_id>/download/", artifacts.artifact_download, name="artifact_download"),
]
