from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from rlaif_site import tokens
from rlaif_site.api.main import api
from rlaif_site.api.main import urlpatterns as api_urlpatterns

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/v1/", include((api_urlpatterns(), "ninja"), namespace=api.urls_namespace)),
    path("account/tokens/", tokens.token_list, name="api_tokens"),
    path("account/tokens/<int:pk>/revoke/", tokens.token_revoke, name="api_token_revoke"),
    path("admin/rq/", include("django_rq.urls")),
    path("admin/", admin.site.urls),
    path("constitutions/", include("constitutions.urls")),
    path("", include("runs.urls")),
]
