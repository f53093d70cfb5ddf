"""The project's routes plus the benchmark floor (mounted in production only with CAREPATH_BENCH_FLOOR)."""

from django.urls import include, path

from carepath.urls import urlpatterns as project_urlpatterns

urlpatterns = [*project_urlpatterns, path("bench-floor/", include("pathways.bench.urls"))]
