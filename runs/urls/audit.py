from django.urls import path

from runs.views import audit, audit_interop, audit_team

urlpatterns = [
    path("runs/<int:run_id>/audit/", audit.dashboard, name="audit_dashboard"),
    path("runs/<int:run_id>/audit/sample/", audit.sample, name="audit_sample"),
    path("runs/<int:run_id>/audit/next/", audit.next_item, name="audit_next"),
    path("runs/<int:run_id>/audit/items/<int:item_id>/", audit.item, name="audit_item"),
    path("runs/<int:run_id>/audit/items/<int:item_id>/flag/", audit.flag, name="audit_flag"),
    path("runs/<int:run_id>/audit/plan/", audit_team.plan, name="audit_plan"),
    path("runs/<int:run_id>/audit/review/", audit_team.review_list, name="audit_review"),
    path("runs/<int:run_id>/audit/review/next/", audit_team.review_next, name="audit_review_next"),
    path("runs/<int:run_id>/audit/review/<int:item_id>/", audit_team.review_item, name="audit_review_item"),
    path("runs/<int:run_id>/audit/disagreements/", audit.disagreement_list, name="audit_disagreements"),
    path("runs/<int:run_id>/audit/export/label-studio/", audit_interop.export_label_studio,
         name="audit_export_label_studio"),
    path("runs/<int:run_id>/audit/export/argilla/", audit_interop.export_argilla, name="audit_export_argilla"),
    path("runs/<int:run_id>/audit/import/", audit_interop.import_view, name="audit_import"),
]
