"""Constitution URLs (namespace ``constitutions``). Link a version with
``{% url 'constitutions:version' version.constitution_id version.number %}`` or, from its primary key,
``{% url 'constitutions:version_by_id' version_id %}``."""
from django.urls import path

from constitutions.views import browse, editor, files, preview

app_name = "constitutions"

urlpatterns = [
    path("", browse.constitution_list, name="list"),
    path("new/", editor.constitution_create, name="create"),
    path("import/", files.import_constitution, name="import"),
    path("versions/<int:version_id>/", browse.version_by_id, name="version_by_id"),
    path("<int:pk>/", browse.constitution_detail, name="detail"),
    path("<int:pk>/edit/", editor.constitution_edit, name="edit"),
    path("<int:pk>/fork/", editor.constitution_fork, name="fork"),
    path("<int:pk>/archive/", editor.constitution_archive, name="archive"),
    path("<int:pk>/unarchive/", editor.constitution_unarchive, name="unarchive"),
    path("<int:pk>/history/", browse.history, name="history"),
    path("<int:pk>/diff/", browse.diff, name="diff"),
    path("<int:pk>/v<int:number>/", browse.version_detail, name="version"),
    path("<int:pk>/v<int:number>/restore/", editor.version_restore, name="restore"),
    path("<int:pk>/v<int:number>/preview/", preview.preview, name="preview"),
    path("<int:pk>/v<int:number>/export.<str:fmt>", files.export_version, name="export"),
]
