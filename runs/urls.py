from django.urls import path

from runs.views import prompts, runs

app_name = "runs"

urlpatterns = [
    path("", runs.run_list, name="list"),
    path("prompt-sets/", prompts.promptset_list, name="promptset_list"),
]
