"""The e-mail outbox (issue 12, section 5): a broker outage delays e-mail and loses none; nothing is sent twice."""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.core import mail
from django.db import connections
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from carepath.celery import app
from pathways.choices import SPECIALIST_ROLES, NotificationKind, Role
from pathways.models import Notification, Task
from pathways.services.enrollment import enrollment_apply
from pathways.services.notifications import NotificationDraft, notifications_create
from pathways.services.sweeps import notifications_email_unsent
from tests.factories import PatientFactory, UserFactory

MINUTE = dt.timedelta(minutes=1)


def _wait_for(predicate, timeout: float = 60.0, every: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


class PrivateRedis:
    """A redis-server of the test's own on a free port, without persistence: stopping it loses its queue."""

    def __init__(self, workdir: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self.workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        assert _wait_for(lambda: self._pings(client), timeout=10), "private redis-server did not start"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    @staticmethod
    def _pings(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.exceptions.ConnectionError:
            return False


def _point_celery_at(url: str) -> None:
    # The app caches its producer pool per broker URL; dropping it makes the next publish use the new URL.
    app.conf.broker_url = url
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server on PATH to start a private broker")
    server = PrivateRedis(tmp_path)
    server.start()
    previous = app.conf.broker_url
    _point_celery_at(server.url)
    try:
        yield server
    finally:
        _point_celery_at(previous)
        server.stop()


@pytest.mark.celery
@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_writes_succeed_while_the_broker_is_down_and_every_email_is_sent_once_after_it_returns(
    pathway, site, coordinator, private_broker, caplog
) -> None:
    from celery.contrib.testing.worker import start_worker

    from pathways.tasks import send_notification_email, sweep_email

    enrollment = enrollment_apply(
        patient_id=PatientFactory(site=site).pk,
        pathway_slug="calciphylaxis",
        actor=coordinator,
        coordinator=coordinator,
        now=timezone.now(),
    )
    worker = UserFactory(username="allrounder", roles=sorted(SPECIALIST_ROLES), sites=[site])
    tasks = list(Task.objects.filter(enrollment=enrollment).order_by("pk"))
    n = len(tasks)  # the day-0 work: one assignment, and so one e-mail, each
    assert n >= 6
    client = APIClient()
    client.force_authenticate(coordinator)

    def assign(task: Task) -> tuple[int, float]:
        started = time.monotonic()
        response = client.post(f"/api/v1/tasks/{task.pk}/assign/", {"version": task.version, "assignee": worker.pk})
        return response.status_code, time.monotonic() - started

    # Three writes while the broker is up: their messages wait in Redis (no worker runs yet) ...
    assert [assign(t)[0] for t in tasks[:3]] == [200] * 3
    # ... and are lost with it: the server keeps nothing on disk.
    private_broker.stop()
    with caplog.at_level("WARNING", logger="pathways.services.notifications"):
        answers = [assign(t) for t in tasks[3:]]
    assert [status for status, _ in answers] == [200] * (n - 3)
    assert max(seconds for _, seconds in answers) < 3.0  # no broker retries hold the request
    assert sum("left for the outbox sweep" in r.getMessage() for r in caplog.records) == n - 3
    assert Task.objects.filter(pk__in=[t.pk for t in tasks], assignee=worker).count() == n
    notifications = Notification.objects.filter(user=worker, kind=NotificationKind.ASSIGNED)
    assert notifications.count() == n and not notifications.filter(emailed_at__isnull=False).exists()

    private_broker.start()  # empty: the three queued e-mails are gone
    _point_celery_at(private_broker.url)
    mail.outbox.clear()
    with (
        override_settings(CAREPATH=_carepath(grace=0)),
        start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30),
    ):
        sweep_email.delay()
        assert _wait_for(lambda: not notifications.filter(emailed_at__isnull=True).exists(), timeout=60)
        # A duplicate tick and late per-id copies of every e-mail change nothing.
        sweep_email.delay()
        for pk in notifications.values_list("pk", flat=True):
            send_notification_email.delay(pk)
        time.sleep(2.0)

    sent = Counter((m.to[0], m.body) for m in mail.outbox)
    assert len(sent) == n and set(sent.values()) == {1}
    assert {to for to, _ in sent} == {worker.email}


def _carepath(*, grace: int) -> dict[str, object]:
    from django.conf import settings

    return {**settings.CAREPATH, "EMAIL_SWEEP_GRACE_SECONDS": grace}


def _unsent(count: int, users, task: Task, at: dt.datetime) -> list[int]:
    drafts = [
        NotificationDraft(
            user_id=users[i % len(users)].pk,
            task_id=task.pk,
            kind=NotificationKind.OVERDUE,
            dedupe_key=f"test:{i}",
            message=f"test message {i}",
        )
        for i in range(count)
    ]
    return notifications_create(drafts=drafts, now=at)


@pytest.fixture
def a_task(pathway, site, coordinator) -> Task:
    enrollment = enrollment_apply(
        patient_id=PatientFactory(site=site).pk, pathway_slug="calciphylaxis", actor=coordinator, now=timezone.now()
    )
    return Task.objects.filter(enrollment=enrollment).first()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sweeps_running_at_once_send_each_email_exactly_once(a_task, site) -> None:
    users = [UserFactory(roles=[Role.WOUND_NURSING], sites=[site]) for _ in range(5)]
    now = timezone.now()
    ids = _unsent(120, users, a_task, now - 5 * MINUTE)
    mail.outbox.clear()
    barrier = threading.Barrier(2)
    reports = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            reports.append(notifications_email_unsent(now=now, batch_size=7))
        except BaseException as exc:  # reported to the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert sum(r.details["sent"] for r in reports) == 120
    bodies = Counter(m.body for m in mail.outbox)
    assert len(bodies) == 120 and set(bodies.values()) == {1}
    assert not Notification.objects.filter(pk__in=ids, emailed_at__isnull=True).exists()
    assert notifications_email_unsent(now=now).details["sent"] == 0


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_sweep_leaves_fresh_rows_to_the_fast_path_and_skips_users_without_an_address(a_task, site) -> None:
    now = timezone.now()
    addressed = UserFactory(roles=[Role.WOUND_NURSING], sites=[site])
    silent = UserFactory(roles=[Role.WOUND_NURSING], sites=[site], email="")
    (fresh,) = _unsent(1, [addressed], a_task, now - dt.timedelta(seconds=10))
    mail.outbox.clear()
    assert notifications_email_unsent(now=now).details["sent"] == 0  # inside the 60 s grace
    _unsent(1, [silent], a_task, now - 5 * MINUTE)
    report = notifications_email_unsent(now=now + MINUTE)
    assert report.details["sent"] == 1 and report.rows == 1
    assert [m.to for m in mail.outbox] == [[addressed.email]]
    assert Notification.objects.get(pk=fresh).emailed_at == now + MINUTE


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_failed_email_backs_off_then_is_retried_and_stops_after_the_attempt_limit(a_task, site) -> None:
    now = timezone.now()
    (pk,) = _unsent(1, [UserFactory(roles=[Role.WOUND_NURSING], sites=[site])], a_task, now - 5 * MINUTE)
    with override_settings(EMAIL_BACKEND="tests.scheduling.mail_backends.DownSMTPBackend"):
        assert notifications_email_unsent(now=now).failed == [pk]
        note = Notification.objects.get(pk=pk)
        assert note.email_attempts == 1 and note.email_retry_at == now + MINUTE and note.emailed_at is None
        assert notifications_email_unsent(now=now + 30 * dt.timedelta(seconds=1)).rows == 0  # backing off
        assert notifications_email_unsent(now=now + MINUTE).failed == [pk]
        assert Notification.objects.get(pk=pk).email_retry_at == now + 3 * MINUTE  # 1 min, then 2 min
        with override_settings(CAREPATH=_carepath(grace=60) | {"EMAIL_MAX_ATTEMPTS": 2}):
            assert notifications_email_unsent(now=now + dt.timedelta(hours=2)).rows == 0  # given up
    mail.outbox.clear()
    assert notifications_email_unsent(now=now + dt.timedelta(hours=2)).details["sent"] == 1
    assert len(mail.outbox) == 1


def test_beat_runs_the_email_sweep_and_email_has_a_queue_of_its_own() -> None:
    tasks = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert "carepath.sweep_email" in tasks
    queue_of = {
        name: app.amqp.router.route({}, name)["queue"].name for name in tasks | {"carepath.send_notification_email"}
    }
    assert queue_of == {
        "carepath.sweep_materialize": "sweeps",
        "carepath.sweep_expire": "sweeps",
        "carepath.sweep_escalate": "sweeps",
        "carepath.sweep_remind": "sweeps",
        "carepath.sweep_email": "email",
        "carepath.send_notification_email": "email",
    }
    # A worker started without --queues (manage.py up's fallback, the tests) consumes both.
    assert {q.name for q in app.conf.task_queues} == {"sweeps", "email"}
