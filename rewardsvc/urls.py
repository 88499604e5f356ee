"""Web pages of the rewardsvc app: reward spot checks."""

from django.urls import path

from rewardsvc import views

app_name = "rewardsvc"
urlpatterns = [
    path("reward/spot-check/", views.spot_check, name="spot_check"),
    path("reward/spot-check/send", views.spot_check_send, name="spot_check_send"),
]
