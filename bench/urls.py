"""The benchmark's URLconf (carepath.bench_settings): the project's routes plus the floor at /bench-floor/, outside
/api/v1/. The product's URLconf (carepath/urls.py) never mounts the floor."""

from django.urls import path

from bench.floor import floor_queue, floor_tasks
from carepath.urls import urlpatterns as project_urlpatterns

urlpatterns = [
    *project_urlpatterns,
    path("bench-floor/queue/", floor_queue, name="bench-floor-queue"),
    path("bench-floor/tasks/", floor_tasks, name="bench-floor-tasks"),
]
