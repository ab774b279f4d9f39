from django.urls import path

from runs.views import prompts

urlpatterns = [
    path("prompt-sets/", prompts.promptset_list, name="promptset_list"),
]
