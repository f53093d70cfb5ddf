"""Concurrent claims on the real PostgreSQL: the row lock plus the version check let exactly one win."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from pathways.choices import Role, TaskStatus
from pathways.models import Task
from pathways.services.enrollment import care_team_add
from tests.api.conftest import World, client_for
from tests.factories import UserFactory


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_claims_of_one_task_give_one_success_and_nine_conflicts(world: World) -> None:
    nurses = [UserFactory(roles=[Role.WOUND_NURSING], sites=[world.site]) for _ in range(10)]
    for nurse in nurses:
        care_team_add(enrollment_id=world.enrollment.pk, user=nurse, role=Role.WOUND_NURSING, actor=None)
    task = Task.objects.get(pk=world.task.pk)
    barrier = threading.Barrier(len(nurses))
    results: list[tuple[int, int, dict]] = []
    lock = threading.Lock()

    def claim(nurse_index: int) -> None:
        try:
            client = client_for(nurses[nurse_index])
            barrier.wait(timeout=10)
            response = client.post(f"/api/v1/tasks/{task.pk}/claim/", {"version": task.version}, format="json")
            with lock:
                results.append((nurse_index, response.status_code, response.json()))
        finally:
            connection.close()  # each thread had its own connection

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(nurses))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    statuses = sorted(status for _, status, _ in results)
    assert statuses == [200] + [409] * 9, results
    winner = next(index for index, status, _ in results if status == 200)
    assert all(body["error"]["code"] in {"stale_version", "illegal_transition"} for _, s, body in results if s == 409)
    task.refresh_from_db()
    assert task.assignee_id == nurses[winner].pk
    assert task.status == TaskStatus.ACCEPTED
    assert task.version == 2
    assert task.events.filter(kind="assigned").count() == 1


@pytest.mark.postgres
def test_claiming_a_task_a_colleague_already_took_is_a_409_not_a_404(world: World) -> None:
    colleague = UserFactory(roles=[Role.WOUND_NURSING], sites=[world.site])
    care_team_add(enrollment_id=world.enrollment.pk, user=colleague, role=Role.WOUND_NURSING, actor=None)
    task = Task.objects.get(pk=world.task.pk)
    url = f"/api/v1/tasks/{task.pk}/claim/"
    assert client_for(colleague).post(url, {"version": task.version}, format="json").status_code == 200
    late = client_for(world.users["wound_nurse"]).post(url, {"version": task.version}, format="json")
    assert late.status_code == 409
    assert late.json()["error"]["code"] == "illegal_transition"
    # The task is still not listed for the nurse who lost: it is the colleague's now.
    assert client_for(world.users["wound_nurse"]).get(f"/api/v1/tasks/{task.pk}/").status_code == 404
