from django.urls import path

from runs.views import prompts

urlpatterns = [
    path("prompt-sets/", prompts.promptset_list, name="promptset_list"),
    path("prompt-sets/import/", prompts.promptset_import, name="promptset_import"),
    path("prompt-sets/import/<str:token>/", prompts.promptset_import_configure, name="promptset_import_configure"),
    path("prompt-sets/<int:pk>/", prompts.promptset_detail, name="promptset_detail"),
    path("prompt-sets/<int:pk>/progress.json", prompts.promptset_progress, name="promptset_progress"),
    path("prompt-sets/<int:pk>/delete/", prompts.promptset_delete, name="promptset_delete"),
    path("runs/<int:run_id>/preferences/export/", prompts.run_export_preferences, name="export_preferences"),
]
