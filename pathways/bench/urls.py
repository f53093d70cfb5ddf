"""/bench-floor/ routes (mounted by carepath/urls.py only when CAREPATH_BENCH_FLOOR is on)."""

from django.urls import path

from pathways.bench.floor import floor_queue, floor_tasks

urlpatterns = [
    path("queue/", floor_queue, name="bench-floor-queue"),
    path("tasks/", floor_tasks, name="bench-floor-tasks"),
]
