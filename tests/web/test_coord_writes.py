"""Every coordinator write as a plain form post: the service runs, the page redirects (post/redirect/get); bad
input is a 4xx with a form error and changes nothing; an auditor's forged post is a 403 and changes nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from pathways.choices import EnrollmentStatus, Role, ScheduleStatus, TaskEventKind, TaskStatus
from pathways.models import CareTeamMember, Enrollment, Patient, Schedule, Task, TaskEvent, User
from pathways.services.enrollment import care_team_add
from pathways.services.tasks import task_assign, task_claim
from tests.factories import UserFactory
from tests.web.conftest import World

pytestmark = pytest.mark.django_db


def client_as(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def patient_form(site_id: int | None, **overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "site": site_id,
        "mrn": "NEW-0001",
        "given_name": "Synthetic",
        "family_name": "Newcomer",
        "birth_date": "1958-03-02",
        "sex": "female",
        "dialysis_modality": "HD",
        "dialysis_days": ["0", "2", "4"],
        "dialysis_session_time": "13:30",
        "risk_factors": ["diabetes"],
        "risk_medications": ["warfarin"],
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


# --- registration and editing ----------------------------------------------------------------------------


def test_registering_a_patient_saves_it_and_goes_on_to_the_enrolment_preview(world: World) -> None:
    response = client_as(world.users["coordinator"]).post("/patients/new/", patient_form(world.site.pk))
    patient = Patient.objects.get(site=world.site, mrn="NEW-0001")
    assert response.status_code == 302 and response["Location"] == f"/patients/{patient.pk}/enrol/"
    assert patient.dialysis_days == [0, 2, 4] and patient.dialysis_session_time == dt.time(13, 30)
    assert patient.risk_medications == ["warfarin"] and patient.family_name == "Newcomer"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"mrn": ""}, "mrn"),
        ({"mrn": "A\x00B"}, "mrn"),
        ({"mrn": "M" * 65}, "mrn"),
        ({"birth_date": "2999-01-01"}, "birth_date"),
        ({"birth_date": "0001-01-01"}, "birth_date"),
        ({"birth_date": "1899-12-31"}, "birth_date"),
        ({"birth_date": "31/31/1999"}, "birth_date"),
        ({"sex": "martian"}, "sex"),
        ({"dialysis_modality": "XX"}, "dialysis_modality"),
        ({"dialysis_days": ["9"]}, "dialysis_days"),
        ({"dialysis_days": ["monday"]}, "dialysis_days"),
        ({"dialysis_session_time": "25:99"}, "dialysis_session_time"),
        ({"risk_factors": ["vampirism"]}, "risk_factors"),
        ({"risk_medications": ["x\x00"]}, "risk_medications"),
        ({"current_therapies": ["aspirin"]}, "current_therapies"),
        ({"dialysis_days": None}, "dialysis_days"),  # haemodialysis without days is refused, never silent
        ({"site": "99999999999999999999"}, "site"),
        ({"site": "abc"}, "site"),
    ],
)
def test_bad_registration_input_is_a_400_with_a_form_error_and_nothing_saved(
    world: World, overrides: dict[str, object], field: str
) -> None:
    before = Patient.objects.count()
    response = client_as(world.users["coordinator"]).post("/patients/new/", patient_form(world.site.pk, **overrides))
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert Patient.objects.count() == before


def test_registering_at_another_site_is_refused(world: World) -> None:
    response = client_as(world.users["coordinator"]).post("/patients/new/", patient_form(world.other_site.pk))
    assert response.status_code == 400 and "site" in response.context["form"].errors
    assert not Patient.objects.filter(mrn="NEW-0001").exists()


def test_a_duplicate_mrn_is_a_form_error_not_a_500(world: World) -> None:
    response = client_as(world.users["coordinator"]).post(
        "/patients/new/", patient_form(world.site.pk, mrn=world.patient.mrn)
    )
    assert response.status_code == 409
    assert "already registered" in response.context["form"].errors["mrn"][0]
    assert Patient.objects.filter(site=world.site, mrn=world.patient.mrn).count() == 1


def test_an_auditors_forged_registration_is_403_and_saves_nothing(world: World) -> None:
    response = client_as(world.users["auditor"]).post("/patients/new/", patient_form(world.site.pk))
    assert response.status_code == 403
    assert not Patient.objects.filter(mrn="NEW-0001").exists()


def _edit_form(patient: Patient, **overrides: object) -> dict[str, object]:
    data = patient_form(
        None,
        mrn=patient.mrn,
        given_name=patient.given_name,
        family_name=patient.family_name,
        birth_date=patient.birth_date.isoformat(),
        sex=patient.sex,
        dialysis_modality=patient.dialysis_modality,
        dialysis_days=[str(d) for d in patient.dialysis_days],
        dialysis_session_time=patient.dialysis_session_time.strftime("%H:%M") if patient.dialysis_session_time else "",
        risk_factors=list(patient.risk_factors),
        risk_medications=list(patient.risk_medications),
        current_therapies=list(patient.current_therapies),
    )
    data.update(overrides)
    return data


def test_editing_a_patient_saves_and_returns_to_the_patient_page(world: World) -> None:
    patient = world.spare_patient
    response = client_as(world.users["coordinator"]).post(
        f"/patients/{patient.pk}/edit/", _edit_form(patient, given_name="Renamed", dialysis_days=["1", "3", "5"])
    )
    assert response.status_code == 302 and response["Location"] == f"/patients/{patient.pk}/"
    patient.refresh_from_db()
    assert patient.given_name == "Renamed" and patient.dialysis_days == [1, 3, 5]


def test_editing_an_enrolled_patients_dialysis_days_replans_and_says_so(world: World) -> None:
    patient = world.patient  # has a live enrollment, Mon/Wed/Fri
    response = client_as(world.users["coordinator"]).post(
        f"/patients/{patient.pk}/edit/",
        _edit_form(patient, dialysis_days=["1", "3", "5"], current_therapies=["cinacalcet"]),
        follow=True,
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Plan updated: pain-score-dialysis re-planned from the next session" in page
    patient.refresh_from_db()
    assert (patient.dialysis_days, patient.current_therapies) == ([1, 3, 5], ["cinacalcet"])
    sts = Schedule.objects.get(enrollment__patient=patient, task_template__code="sodium-thiosulfate")
    assert sts.next_due_at is not None and sts.next_due_at.astimezone(patient.site.tzinfo).weekday() in (1, 3, 5)


def test_a_haemodialysis_patient_without_days_is_refused_on_the_form(world: World) -> None:
    patient = world.patient
    before = Patient.objects.values().get(pk=patient.pk)
    response = client_as(world.users["coordinator"]).post(
        f"/patients/{patient.pk}/edit/", _edit_form(patient, dialysis_days=[])
    )
    assert response.status_code == 400
    assert "required for haemodialysis" in " ".join(response.context["form"].errors["dialysis_days"])
    assert Patient.objects.values().get(pk=patient.pk) == before


def test_other_fields_of_an_enrolled_patient_edit_fine(world: World) -> None:
    patient = world.patient
    response = client_as(world.users["coordinator"]).post(
        f"/patients/{patient.pk}/edit/", _edit_form(patient, family_name="Edited", risk_factors=["obesity"])
    )
    assert response.status_code == 302
    patient.refresh_from_db()
    assert patient.family_name == "Edited" and patient.risk_factors == ["obesity"]


def test_editing_to_a_taken_mrn_is_a_409_form_error(world: World) -> None:
    response = client_as(world.users["coordinator"]).post(
        f"/patients/{world.spare_patient.pk}/edit/", _edit_form(world.spare_patient, mrn=world.patient.mrn)
    )
    assert response.status_code == 409 and "mrn" in response.context["form"].errors


# --- enrolment -------------------------------------------------------------------------------------------


def test_confirming_the_preview_enrols_and_returns_to_the_patient_page(world: World) -> None:
    coordinator = world.users["coordinator"]
    patient = world.spare_patient
    response = client_as(coordinator).post(f"/patients/{patient.pk}/enrol/")
    assert response.status_code == 302 and response["Location"] == f"/patients/{patient.pk}/"
    enrollment = Enrollment.objects.get(patient=patient, status=EnrollmentStatus.ACTIVE)
    assert enrollment.coordinator == coordinator and enrollment.enrolled_by == coordinator
    assert CareTeamMember.objects.filter(enrollment=enrollment, user=coordinator, role=Role.COORDINATOR).exists()
    assert Task.objects.filter(enrollment=enrollment).exists()


def test_enrolling_an_enrolled_patient_is_a_clear_409(world: World) -> None:
    client = client_as(world.users["coordinator"])
    page = client.get(f"/patients/{world.patient.pk}/enrol/")
    assert page.status_code == 200 and b"already enrolled" in page.content and b"enrol-confirm" not in page.content
    response = client.post(f"/patients/{world.patient.pk}/enrol/")
    assert response.status_code == 409 and b"already has a live" in response.content
    assert Enrollment.objects.filter(patient=world.patient).count() == 1


def test_an_auditors_forged_enrolment_changes_nothing(world: World) -> None:
    response = client_as(world.users["auditor"]).post(f"/patients/{world.spare_patient.pk}/enrol/")
    assert response.status_code == 403
    assert not Enrollment.objects.filter(patient=world.spare_patient).exists()


# --- care team -------------------------------------------------------------------------------------------


def test_adding_a_member_by_role(world: World) -> None:
    url = f"/enrollments/{world.enrollment.pk}/care-team/"
    neph = world.users["nephrologist"]
    response = client_as(world.users["coordinator"]).post(url, {"user": neph.pk, "role": Role.NEPHROLOGY})
    assert response.status_code == 302 and response["Location"] == url
    assert CareTeamMember.objects.filter(
        enrollment=world.enrollment, user=neph, role=Role.NEPHROLOGY, period_end__isnull=True
    ).exists()


@pytest.mark.parametrize(
    ("who", "role", "status"),
    [
        ("wound_nurse", Role.NEPHROLOGY, 400),  # a role the user does not hold
        ("nephrologist", Role.COORDINATOR, 400),  # not a specialist role
        ("nephrologist", "bogus", 400),
        ("wound_nurse", Role.WOUND_NURSING, 409),  # already on the team in that role
        ("auditor", Role.NEPHROLOGY, 400),  # not offered: holds no specialist role
    ],
)
def test_bad_care_team_additions_are_refused_and_change_nothing(world: World, who: str, role: str, status: int) -> None:
    before = CareTeamMember.objects.count()
    response = client_as(world.users["coordinator"]).post(
        f"/enrollments/{world.enrollment.pk}/care-team/", {"user": world.users[who].pk, "role": role}
    )
    assert response.status_code == status
    assert response.context["form"].errors
    assert CareTeamMember.objects.count() == before


def test_an_unknown_or_huge_user_id_is_a_400(world: World) -> None:
    client = client_as(world.users["coordinator"])
    for value in ("99999999999999999999", "abc", "1\x00"):
        response = client.post(f"/enrollments/{world.enrollment.pk}/care-team/", {"user": value, "role": "nephrology"})
        assert response.status_code == 400


def test_ending_a_membership(world: World) -> None:
    client = client_as(world.users["coordinator"])
    url = f"/enrollments/{world.enrollment.pk}/care-team/{world.member.pk}/end/"
    assert client.post(url).status_code == 302
    world.member.refresh_from_db()
    assert world.member.period_end is not None
    again = client.post(url)
    assert again.status_code == 409 and b"already ended" in again.content


def test_ending_a_membership_of_another_enrollment_through_this_one_is_404(world: World) -> None:
    url = f"/enrollments/{world.enrollment.pk}/care-team/{world.other_team_member.pk}/end/"
    assert client_as(world.users["coordinator"]).post(url).status_code == 404
    world.other_team_member.refresh_from_db()
    assert world.other_team_member.period_end is None


def test_an_auditors_forged_membership_end_changes_nothing(world: World) -> None:
    url = f"/enrollments/{world.enrollment.pk}/care-team/{world.member.pk}/end/"
    assert client_as(world.users["auditor"]).post(url).status_code == 403
    world.member.refresh_from_db()
    assert world.member.period_end is None


# --- assignment ------------------------------------------------------------------------------------------


def _pool(enrollment: Enrollment, role: str) -> list[Task]:
    return list(
        Task.objects.filter(enrollment=enrollment, role=role, assignee__isnull=True, status=TaskStatus.REQUESTED)
    )


def test_bulk_assignment_gives_every_checked_task_to_the_person(world: World) -> None:
    nurse = world.users["wound_nurse"]
    tasks = _pool(world.enrollment, Role.WOUND_NURSING)
    assert len(tasks) >= 2
    response = client_as(world.users["coordinator"]).post(
        "/assign/", {"tasks": [f"{t.pk}:{t.version}" for t in tasks], "assignee": nurse.pk, "reason": "covering"}
    )
    assert response.status_code == 302
    assert {t.assignee_id for t in Task.objects.filter(pk__in=[t.pk for t in tasks])} == {nurse.pk}
    assert TaskEvent.objects.filter(task__in=tasks, kind=TaskEventKind.ASSIGNED, reason="covering").count() == len(
        tasks
    )


def test_a_stale_task_fails_the_whole_bulk_and_names_who_changed_it(world: World) -> None:
    nurse = world.users["wound_nurse"]
    tasks = _pool(world.enrollment, Role.WOUND_NURSING)
    stale = tasks[-1]
    posted = [f"{t.pk}:{t.version}" for t in tasks]
    task_claim(task_id=stale.pk, actor=nurse, expected_version=stale.version)  # someone moved first
    response = client_as(world.users["coordinator"]).post("/assign/", {"tasks": posted, "assignee": nurse.pk})
    assert response.status_code == 409
    body = response.content.decode()
    assert f"task {stale.pk}" in body and "changed by wound" in body and "nothing was assigned" in body
    others = Task.objects.filter(pk__in=[t.pk for t in tasks[:-1]])
    assert all(t.assignee_id is None and t.version == 1 for t in others)


def test_bulk_assignment_to_someone_off_the_care_team_assigns_nothing(world: World) -> None:
    outsider = UserFactory(username="wound2", roles=[Role.WOUND_NURSING], sites=[world.site])
    tasks = _pool(world.enrollment, Role.WOUND_NURSING)
    response = client_as(world.users["coordinator"]).post(
        "/assign/", {"tasks": [f"{t.pk}:{t.version}" for t in tasks], "assignee": outsider.pk}
    )
    assert response.status_code == 400 and b"not on this patient" in response.content
    assert not Task.objects.filter(pk__in=[t.pk for t in tasks], assignee__isnull=False).exists()


@pytest.mark.parametrize(
    "tasks",
    [[], ["abc"], ["1:"], ["\u0661:1"], ["99999999999999999999:1"], ["1:1\x00"]],
)
def test_malformed_bulk_input_is_a_400(world: World, tasks: list[str]) -> None:
    response = client_as(world.users["coordinator"]).post(
        "/assign/", {"tasks": tasks, "assignee": world.users["wound_nurse"].pk}
    )
    assert response.status_code == 400
    assert not Task.objects.filter(assignee__isnull=False).exists()


def test_bulk_assigning_another_sites_task_is_404_and_assigns_nothing(world: World) -> None:
    t, o = world.task, world.other_site_task
    response = client_as(world.users["coordinator"]).post(
        "/assign/", {"tasks": [f"{t.pk}:{t.version}", f"{o.pk}:{o.version}"], "assignee": world.users["wound_nurse"].pk}
    )
    assert response.status_code == 404
    assert not Task.objects.filter(assignee__isnull=False).exists()


def test_an_auditors_forged_bulk_assignment_changes_nothing(world: World) -> None:
    t = world.task
    response = client_as(world.users["auditor"]).post(
        "/assign/", {"tasks": [f"{t.pk}:{t.version}"], "assignee": world.users["wound_nurse"].pk}
    )
    assert response.status_code == 403
    assert not Task.objects.filter(assignee__isnull=False).exists()


def test_reassigning_with_a_reason(world: World) -> None:
    coordinator = world.users["coordinator"]
    first = world.users["wound_nurse"]
    second = UserFactory(username="wound2", roles=[Role.WOUND_NURSING], sites=[world.site])
    care_team_add(enrollment_id=world.enrollment.pk, user=second, role=Role.WOUND_NURSING, actor=coordinator)
    task = task_assign(task_id=world.task.pk, assignee=first, actor=coordinator, expected_version=world.task.version)
    client = client_as(coordinator)
    url = f"/assign/{task.pk}/reassign/"
    missing_reason = client.post(url, {"assignee": second.pk, "version": task.version, "reason": ""})
    assert missing_reason.status_code == 400 and "reason" in missing_reason.context["form"].errors
    stale = client.post(url, {"assignee": second.pk, "version": task.version - 1, "reason": "leave"})
    assert stale.status_code == 409
    done = client.post(url, {"assignee": second.pk, "version": task.version, "reason": "annual leave"})
    assert done.status_code == 302
    task.refresh_from_db()
    assert task.assignee == second
    assert TaskEvent.objects.filter(task=task, kind=TaskEventKind.ASSIGNED, reason="annual leave").exists()


def test_reassigning_to_someone_off_the_team_is_not_offered(world: World) -> None:
    outsider = UserFactory(username="wound3", roles=[Role.WOUND_NURSING], sites=[world.site])
    response = client_as(world.users["coordinator"]).post(
        f"/assign/{world.task.pk}/reassign/", {"assignee": outsider.pk, "version": world.task.version, "reason": "x"}
    )
    assert response.status_code == 400 and "assignee" in response.context["form"].errors
    world.task.refresh_from_db()
    assert world.task.assignee is None


# --- the enrollment lifecycle ----------------------------------------------------------------------------


def _status(enrollment: Enrollment) -> str:
    enrollment.refresh_from_db()
    return enrollment.status


def test_hold_resume_and_complete_as_plain_posts(world: World) -> None:
    client = client_as(world.users["coordinator"])
    e = world.enrollment
    patient_page = f"/patients/{e.patient_id}/"
    no_reason = client.post(f"/enrollments/{e.pk}/hold/", {"reason": "  "})
    assert no_reason.status_code == 400 and _status(e) == EnrollmentStatus.ACTIVE
    held = client.post(f"/enrollments/{e.pk}/hold/", {"reason": "admitted to hospital"})
    assert held.status_code == 302 and held["Location"] == patient_page and _status(e) == EnrollmentStatus.ON_HOLD
    assert not Schedule.objects.filter(enrollment=e, status=ScheduleStatus.ACTIVE).exists()
    assert client.post(f"/enrollments/{e.pk}/hold/", {"reason": "again"}).status_code == 409
    assert client.post(f"/enrollments/{e.pk}/resume/").status_code == 302 and _status(e) == EnrollmentStatus.ACTIVE
    assert client.post(f"/enrollments/{e.pk}/resume/").status_code == 409
    assert client.post(f"/enrollments/{e.pk}/complete/", {"reason": ""}).status_code == 302
    assert _status(e) == EnrollmentStatus.COMPLETED
    assert not Task.objects.filter(enrollment=e, status__in=["requested", "accepted", "in-progress"]).exists()


def test_revoke_needs_a_reason(world: World) -> None:
    client = client_as(world.users["coordinator"])
    e = world.other_team_enrollment
    assert client.post(f"/enrollments/{e.pk}/revoke/", {"reason": ""}).status_code == 400
    assert client.post(f"/enrollments/{e.pk}/revoke/", {"reason": "x" * 2001}).status_code == 400
    assert _status(e) == EnrollmentStatus.ACTIVE
    assert client.post(f"/enrollments/{e.pk}/revoke/", {"reason": "entered in error"}).status_code == 302
    assert _status(e) == EnrollmentStatus.REVOKED


@pytest.mark.parametrize("action", ["hold", "resume", "complete", "revoke", "release-hold"])
def test_an_auditors_forged_lifecycle_post_changes_nothing(world: World, action: str) -> None:
    e = world.enrollment
    response = client_as(world.users["auditor"]).post(f"/enrollments/{e.pk}/{action}/", {"reason": "forged"})
    assert response.status_code == 403
    assert _status(e) == EnrollmentStatus.ACTIVE


def test_releasing_a_safety_hold(world: World) -> None:
    e = world.enrollment
    schedule = Schedule.objects.get(enrollment=e, task_template__code="sodium-thiosulfate")
    Schedule.objects.filter(pk=schedule.pk).update(
        status=ScheduleStatus.PAUSED, pause_reason="held by rule sts-safety-hold", paused_at=dt.datetime.now(dt.UTC)
    )
    client = client_as(world.users["coordinator"])
    url = f"/enrollments/{e.pk}/release-hold/"
    assert b"sodium" in client.get(url).content.lower()
    assert client.post(url, {"template": "wound-assessment"}).status_code == 400  # not a held schedule
    assert client.post(url, {"template": "a\x00"}).status_code == 400
    response = client.post(url, {"template": "sodium-thiosulfate", "reason": "calcium back in range"})
    assert response.status_code == 302
    schedule.refresh_from_db()
    assert schedule.pause_reason == "" and schedule.status == ScheduleStatus.ACTIVE


def test_release_hold_without_a_held_schedule_says_so(world: World) -> None:
    response = client_as(world.users["coordinator"]).get(f"/enrollments/{world.enrollment.pk}/release-hold/")
    assert response.status_code == 200 and b"No schedule of this enrollment is held" in response.content


# --- the calendar ----------------------------------------------------------------------------------------


def test_the_calendar_puts_sodium_thiosulfate_on_the_dialysis_days_in_local_time(world: World) -> None:
    # The world's patients dialyse Mon/Wed/Fri at 13:00 (Chicago).
    body = client_as(world.users["coordinator"]).get(f"/enrollments/{world.enrollment.pk}/calendar/").content.decode()
    cells = body.split('<td class="day')[1:]
    sts_days = []
    for cell in cells:
        date = cell.split('data-date="')[1][:10]
        if 'data-template="sodium-thiosulfate"' in cell:
            assert ">13:00</time>" in cell.split('data-template="sodium-thiosulfate"')[1]
            sts_days.append(dt.date.fromisoformat(date).weekday())
    assert len(sts_days) >= 10 and set(sts_days) == {0, 2, 4}
    assert len(cells) % 7 == 0
