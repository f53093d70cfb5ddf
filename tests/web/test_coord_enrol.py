"""The enrolment preview promises exactly what enrollment_apply creates (so the two cannot drift), shows it in
the site's local time, and follows the applicability rules."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from pathways.choices import DialysisModality, RecurrenceKind
from pathways.models import Patient, Schedule, Site, Task, User
from pathways.selectors.enrollment_preview import enrollment_preview
from pathways.services.enrollment import enrollment_apply
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

# A Tuesday, 15:00 UTC (09:00 in Chicago); the microseconds matter (the recurrence engine drops them).
NOW = dt.datetime(2026, 3, 3, 15, 0, 0, 123456, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("modality", "medications", "days"),
    [
        (DialysisModality.HEMODIALYSIS, [], [0, 2, 4]),
        (DialysisModality.HEMODIALYSIS, ["warfarin"], [1, 3, 5]),
        (DialysisModality.PERITONEAL, [], []),
        (DialysisModality.NONE, ["warfarin", "vitamin_d"], []),
    ],
)
def test_the_preview_equals_what_enrolment_creates(
    pathway, site: Site, coordinator: User, modality: str, medications: list[str], days: list[int]
) -> None:
    patient = PatientFactory(site=site, dialysis_modality=modality, risk_medications=medications, dialysis_days=days)
    patient = Patient.objects.select_related("site").get(pk=patient.pk)
    preview = enrollment_preview(patient=patient, pathway_slug="calciphylaxis", now=NOW)
    assert preview is not None and preview.live_enrollment is None

    enrollment = enrollment_apply(patient_id=patient.pk, pathway_slug="calciphylaxis", actor=coordinator, now=NOW)

    created = Task.objects.filter(enrollment=enrollment)
    assert sorted((t.code, t.available_at, t.due_at) for t in preview.day0) == sorted(
        (t.template.code, t.available_at, t.due_at) for t in created.select_related("template")
    )
    schedules = Schedule.objects.filter(enrollment=enrollment).select_related("task_template")
    assert sorted(s.code for s in preview.schedules) == sorted(s.task_template.code for s in schedules)
    firsts = {s.task_template.code: s.anchor_at for s in schedules}
    for item in preview.schedules:
        assert firsts[item.code] == NOW
        schedule = next(s for s in schedules if s.task_template.code == item.code)
        if item.code not in {t.code for t in preview.day0}:
            # Not due at once: the schedule's next time is the preview's first occurrence.
            assert schedule.next_due_at == item.first_at
        if item.code in {t.code for t in preview.day0}:
            # The day-0 occurrence is the schedule's first listed occurrence too.
            assert item.occurrences[:1] == [item.first_at]
    skipped = enrollment.events.get().data["not_applicable"]
    assert sorted(t.code for t in preview.not_applicable) == sorted(skipped)


def test_sodium_thiosulfate_is_previewed_on_the_dialysis_days_at_the_session_time(
    pathway, site: Site, coordinator: User
) -> None:
    patient = PatientFactory(site=site, dialysis_days=[0, 2, 4], dialysis_session_time=dt.time(13, 0))
    patient = Patient.objects.select_related("site").get(pk=patient.pk)
    preview = enrollment_preview(patient=patient, pathway_slug="calciphylaxis", now=NOW)
    assert preview is not None
    sts = next(s for s in preview.schedules if s.code == "sodium-thiosulfate")
    assert sts.kind == RecurrenceKind.DIALYSIS_DAYS and len(sts.occurrences) >= 5
    local = [o.astimezone(site.tzinfo) for o in sts.occurrences]
    assert {o.weekday() for o in local} == {0, 2, 4}
    assert {(o.hour, o.minute) for o in local} == {(13, 0)}
    assert local[0].date() == dt.date(2026, 3, 4)  # the first session after enrolling on a Tuesday


def test_the_preview_page_lists_day0_tasks_schedules_and_what_does_not_apply(world) -> None:
    patient = world.spare_patient
    Patient.objects.filter(pk=patient.pk).update(dialysis_days=[0, 2, 4], risk_medications=[])
    client = Client()
    client.force_login(world.users["coordinator"])
    body = client.get(f"/patients/{patient.pk}/enrol/").content.decode()
    day0 = body.split('id="preview-day0"')[1].split("</table>")[0]
    assert 'data-template="wound-assessment"' in day0
    schedules = body.split('id="preview-schedules"')[1].split("</table>")[0]
    sts = schedules.split('data-template="sodium-thiosulfate"')[1].split("</tr>")[0]
    for day in ("Mon", "Wed", "Fri"):
        assert day in sts
    assert "Tue" not in sts and "13:00 C" in sts  # 13:00 CST/CDT: local time with its zone
    assert 'data-template="inr-monitoring"' in body.split('id="preview-not-applicable"')[1]
    assert 'id="enrol-confirm"' in body


def test_without_an_active_pathway_the_preview_says_so(site: Site, coordinator: User) -> None:
    patient = PatientFactory(site=site)
    client = Client()
    client.force_login(coordinator)
    response = client.get(f"/patients/{patient.pk}/enrol/")
    assert response.status_code == 409 and b"No active version" in response.content
    assert client.post(f"/patients/{patient.pk}/enrol/").status_code == 400
