"""Operator commands: seed_demo and create_user."""

from __future__ import annotations

import io
from collections import Counter

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import F
from django.utils import timezone

from pathways.choices import SPECIALIST_ROLES, Role
from pathways.models import Enrollment, FirstAction, Patient, Site, Task, TaskEvent, User


def test_seed_demo_creates_sites_users_and_enrolled_patients_and_is_idempotent(pathway) -> None:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    text = out.getvalue()
    assert {s.code: s.timezone for s in Site.objects.all()} == {
        "phx": "America/Phoenix",
        "chi": "America/Chicago",
        "nyc": "America/New_York",
    }
    roles_held = {r for roles in User.objects.values_list("roles", flat=True) for r in roles}
    assert roles_held == set(Role.values)
    assert 18 <= Patient.objects.count() <= 24
    assert Enrollment.objects.count() == Patient.objects.count()
    assert set(Patient.objects.values_list("dialysis_modality", flat=True)) >= {"HD", "PD", "transplant", "none"}
    # A suspected case (workup under way) at every site (issue 16).
    suspected = Enrollment.objects.filter(diagnosis_status="provisional")
    assert set(suspected.values_list("patient__site__code", flat=True)) == {"phx", "chi", "nyc"}
    assert Task.objects.filter(enrollment__in=suspected, template__code="workup-labs").count() == 3
    assert any("warfarin" in meds for meds in Patient.objects.values_list("risk_medications", flat=True))
    assert "password for all: carepath-demo" in text and "coordinator.chi" in text and "enrolled patient " in text
    assert "DEMO-" not in text  # ids only: this output is part of the log of `manage.py up`
    counts = (Patient.objects.count(), Enrollment.objects.count(), Task.objects.count(), User.objects.count())

    again = io.StringIO()
    call_command("seed_demo", stdout=again)
    assert (Patient.objects.count(), Enrollment.objects.count(), Task.objects.count(), User.objects.count()) == counts
    assert "enrolled patient " not in again.getvalue()
    # Every enrollment has a full care team: one member per specialist role plus the coordinator.
    enrollment = Enrollment.objects.first()
    assert set(enrollment.care_team.values_list("role", flat=True)) == set(SPECIALIST_ROLES) | {"coordinator"}


def test_seed_demo_works_the_past_so_the_dashboard_has_history(pathway) -> None:
    """The demo's enrollments are up to three weeks old; their past was worked through the real services, in
    time order: some tasks on time, some late, some still open (and overdue), none completed in the future."""
    before = timezone.now()
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    assert "tasks worked between enrolment and now" in out.getvalue()
    statuses = Counter(Task.objects.values_list("status", flat=True))
    done = Task.objects.filter(status="completed")
    on_time = done.filter(completed_at__lte=F("due_at")).count()
    late = done.filter(completed_at__gt=F("due_at")).count()
    overdue_open = Task.objects.filter(status="requested", due_at__lt=before).count()
    assert on_time > late > 0 and overdue_open > 0, (on_time, late, overdue_open)
    # Doses whose session ended before anyone gave them were missed, as the expiry sweep would have closed them;
    # no session work is left open past the end of its window.
    assert statuses["missed"] > 0
    assert not Task.objects.filter(status__in=["requested", "accepted"], expires_at__lte=before).exists()
    assert statuses["completed"] > statuses["requested"] / 2
    assert not done.filter(completed_at__gt=timezone.now()).exists()
    assert not done.filter(completed_at__lt=F("available_at")).exists()
    # Through the services: claimed, started and completed by someone holding the task's role, with events.
    task = done.select_related("completed_by").first()
    assert task.role in task.completed_by.roles or task.role == "coordinator"
    assert list(
        TaskEvent.objects.filter(task=task)
        .exclude(to_status="")
        .order_by("at", "pk")
        .values_list("to_status", flat=True)
    ) == [
        "requested",
        "accepted",
        "in-progress",
        "completed",
    ]
    # The first-action table (kept by the database trigger) has a row for every enrollment that was acted on
    # (those enrolled just now have nothing due yet).
    acted = set(Task.objects.filter(started_at__isnull=False).values_list("enrollment_id", flat=True))
    assert set(FirstAction.objects.values_list("enrollment_id", flat=True)) == acted
    assert len(acted) >= Enrollment.objects.count() - 4


def test_seed_demo_refuses_without_a_loaded_pathway(db) -> None:
    with pytest.raises(CommandError, match="load_pathways"):
        call_command("seed_demo")


def test_create_user_with_roles_sites_and_a_password_from_the_environment(db, monkeypatch) -> None:
    Site.objects.create(code="chi", name="Chicago", timezone="America/Chicago")
    Site.objects.create(code="nyc", name="New York", timezone="America/New_York")
    monkeypatch.setenv("NEW_USER_PASSWORD", "a-Long-enough-passphrase")
    out = io.StringIO()
    call_command(
        "create_user",
        "wound.lee",
        "--email",
        "wl@example.org",
        "--role",
        "wound_nursing",
        "--role",
        "dermatology",
        "--site",
        "chi,nyc",
        "--password-env",
        "NEW_USER_PASSWORD",
        stdout=out,
    )
    user = User.objects.get(username="wound.lee")
    assert sorted(user.roles) == ["dermatology", "wound_nursing"]
    assert set(user.sites.values_list("code", flat=True)) == {"chi", "nyc"}
    assert user.check_password("a-Long-enough-passphrase")
    assert "created user wound.lee" in out.getvalue()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "astrologer", "--site", "chi"], "unknown role"),
        (["--role", "nephrology", "--site", "mars"], "unknown site"),
        (["--site", "chi"], "at least one --role"),
        (["--role", "nephrology"], "at least one --site"),
    ],
)
def test_create_user_rejects_a_bad_role_or_site_and_writes_nothing(db, monkeypatch, args, message) -> None:
    Site.objects.create(code="chi", name="Chicago", timezone="America/Chicago")
    monkeypatch.setenv("NEW_USER_PASSWORD", "a-Long-enough-passphrase")
    with pytest.raises(CommandError, match=message):
        call_command("create_user", "someone", "--email", "s@example.org", *args, "--password-env", "NEW_USER_PASSWORD")
    assert not User.objects.filter(username="someone").exists()


def test_create_user_rejects_a_weak_password_and_a_missing_variable(db, monkeypatch) -> None:
    Site.objects.create(code="chi", name="Chicago", timezone="America/Chicago")
    monkeypatch.setenv("WEAK", "password")
    with pytest.raises(CommandError, match="password"):
        call_command(
            "create_user",
            "weak",
            "--email",
            "w@example.org",
            "--role",
            "auditor",
            "--site",
            "chi",
            "--password-env",
            "WEAK",
        )
    with pytest.raises(CommandError, match="UNSET_VAR is not set"):
        call_command(
            "create_user",
            "weak",
            "--email",
            "w@example.org",
            "--role",
            "auditor",
            "--site",
            "chi",
            "--password-env",
            "UNSET_VAR",
        )
    assert not User.objects.filter(username="weak").exists()
