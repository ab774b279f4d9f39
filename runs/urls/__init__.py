"""URLs of the runs app, one module per area (runs pages, prompt sets and datasets, audits)."""
from runs.urls import audit, prompts, runs

app_name = "runs"

urlpatterns = [*runs.urlpatterns, *prompts.urlpatterns, *audit.urlpatterns]
