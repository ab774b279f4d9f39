from django.urls import path

from runs.views import runs

urlpatterns = [
    path("", runs.run_list, name="list"),
]
