from django.urls import path

from constitutions import views

app_name = "constitutions"

urlpatterns = [
    path("", views.constitution_list, name="list"),
]
