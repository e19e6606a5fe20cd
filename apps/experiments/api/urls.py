from django.urls import path

from apps.experiments.api.views import ExperimentViewSet, RunViewSet

EXPERIMENTS = "projects/<uuid:project_pk>/experiments/"
EXPERIMENT = EXPERIMENTS + "<uuid:pk>/"
RUNS = "projects/<uuid:project_pk>/runs/"
RUN = RUNS + "<uuid:pk>/"

urlpatterns = [
    path(EXPERIMENTS, ExperimentViewSet.as_view({"get": "list", "post": "create"}), name="experiment-list"),
    path(EXPERIMENT, ExperimentViewSet.as_view({"get": "retrieve"}), name="experiment-detail"),
    path(EXPERIMENT + "cancel/", ExperimentViewSet.as_view({"post": "cancel"}), name="experiment-cancel"),
    path(EXPERIMENT + "leaderboard/", ExperimentViewSet.as_view({"get": "leaderboard"}), name="experiment-leaderboard"),
    path(RUNS, RunViewSet.as_view({"get": "list"}), name="run-list"),
    path(RUNS + "compare/", RunViewSet.as_view({"get": "compare"}), name="run-compare"),
    path(RUN, RunViewSet.as_view({"get": "retrieve"}), name="run-detail"),
    path(RUN + "cancel/", RunViewSet.as_view({"post": "cancel"}), name="run-cancel"),
    path(RUN + "log/", RunViewSet.as_view({"get": "log"}), name="run-log"),
]
