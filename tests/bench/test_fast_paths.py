"""Fast paths added for the benchmarks return exactly what the general paths they replace returned."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework import serializers

from pathways.api.serializers import TaskSerializer
from pathways.bench.data import bench_fill
from pathways.models import PathwayTemplate, Task
from pathways.selectors.tasks import task_list
from pathways.services.task_creation import NewTask, tasks_create
from tests.factories import UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _generic(task: Task) -> dict[str, object]:
    # DRF's own ModelSerializer path, field by field, over the same declared fields.
    return dict(serializers.ModelSerializer.to_representation(TaskSerializer(), task))


def test_the_hand_built_task_representation_equals_drfs_field_by_field_one(pathway: PathwayTemplate) -> None:
    bench_fill(tasks=3000, now=timezone.now(), progress=False)
    enrollment_id = Task.objects.values_list("enrollment_id", flat=True).first()
    now = timezone.now()
    # An ad-hoc task (no template), held until a time, with prerequisites pending.
    (ad_hoc,) = tasks_create(
        enrollment_id=enrollment_id,
        new_tasks=[
            NewTask(
                title="Ad hoc",
                prong="support",
                role="pharmacy",
                priority="urgent",
                available_at=now,
                due_at=now + dt.timedelta(hours=4),
                blocked_by=("pre-dialysis-labs",),
            )
        ],
        actor=None,
    )
    Task.objects.filter(pk=ad_hoc.pk).update(status="on-hold", status_before_hold="requested", hold_until=now)
    tasks = list(
        task_list(user=UserFactory(roles=["admin"])).filter(
            status__in=["completed", "in-progress", "on-hold", "requested"]
        )
    )
    by_status = {t.status for t in tasks}
    assert by_status == {"completed", "in-progress", "on-hold", "requested"}
    for task in [*tasks[:400], next(t for t in tasks if t.pk == ad_hoc.pk)]:
        assert TaskSerializer(task).data == _generic(task)
    assert list(TaskSerializer(tasks[0]).data) == list(TaskSerializer().fields)
