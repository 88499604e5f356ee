"""URL map. Each app owns its web pages (``<app>/urls.py``) and its API (``<app>/api/urls.py``)."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config import views
from config.observability import metrics_view

urlpatterns = [
    path("", views.home, name="home"),
    path("health", views.health, name="health"),
    path("ready", views.ready, name="ready"),
    path("metrics", metrics_view, name="metrics"),
    # Every password login goes through the rate-limited view: the admin's own login form is not limited.
    path("admin/login/", RedirectView.as_view(pattern_name="login", query_string=True)),
    path("admin/", admin.site.urls),
    path("accounts/login/", views.RateLimitedLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/v1/", include("annotation.api.urls")),
    path("api/v1/", include("training.api_urls")),
    path("api/v1/", include("rewardsvc.api.urls")),
    path("", include("annotation.urls")),
    path("", include("training.urls")),
    path("", include("rewardsvc.urls")),
]
