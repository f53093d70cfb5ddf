"""The migration rules case by case: re-planning each recurrence kind (pure), and templates whose
applicability or kind changes between versions."""

from __future__ import annotations

import copy
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from pathways.choices import ScheduleStatus, TaskStatus
from pathways.domain.recurrence import PatientCalendar, RecurrenceSpec
from pathways.domain.versions import Replanned, replanned_next_due
from pathways.models import Schedule, Task
from pathways.services.enrollment import enrollment_apply
from pathways.services.migration import enrollment_migrate
from tests.factories import PatientFactory
from tests.versions import bundled_document, load_document

CHICAGO = PatientCalendar(tz=ZoneInfo("America/Chicago"), dialysis_days=(0, 2, 4))
ANCHOR = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)  # Monday 09:00 CST
NOW = dt.datetime(2026, 3, 5, 16, 0, tzinfo=dt.UTC)  # Thursday 10:00 CST


def _spec(kind: str, **recurrence) -> RecurrenceSpec:
    first_due = recurrence.pop("first_due", {})
    return RecurrenceSpec.from_fields(kind=kind, first_due=first_due, recurrence=recurrence)


@pytest.mark.parametrize(
    ("spec", "state", "expected"),
    [
        # every 2 days from Monday 09:00 local: Wed 09:00, then Fri 09:00 CST (15:00 UTC), the first at/after now
        (_spec("interval", every_days=2), {"made": 2}, Replanned(dt.datetime(2026, 3, 6, 15, 0, tzinfo=dt.UTC), False)),
        # a count already reached finishes
        (_spec("interval", every_days=2, count=2), {"made": 2}, Replanned(None, True)),
        # dialysis days (Mon/Wed/Fri at the 07:00 default session): Friday 07:00 CST
        (_spec("dialysis_days"), {"made": 2}, Replanned(dt.datetime(2026, 3, 6, 13, 0, tzinfo=dt.UTC), False)),
        # once, not made yet, now due on day 7
        (
            _spec("once", first_due={"day": 7}),
            {"made": 0},
            Replanned(dt.datetime(2026, 3, 9, 14, 0, tzinfo=dt.UTC), False),  # 09:00 CDT after the DST change
        ),
        # once, moved earlier than now: due now, never in the past
        (_spec("once", first_due={"day": 1}), {"made": 0}, Replanned(NOW, False)),
        # once, already made: nothing more
        (_spec("once", first_due={"day": 7}), {"made": 1}, Replanned(None, True)),
        # after completion, an occurrence open: keeps waiting
        (_spec("after_completion", hours=24), {"made": 1, "next_due_at": None}, Replanned(None, False)),
        # after completion, completed Wednesday 15:00 UTC: 24 h later is Thursday 15:00 UTC, before now -> now
        (
            _spec("after_completion", hours=24),
            {"made": 1, "next_due_at": ANCHOR, "last_completed_at": dt.datetime(2026, 3, 4, 15, 0, tzinfo=dt.UTC)},
            Replanned(NOW, False),
        ),
        (
            _spec("after_completion", hours=36),
            {"made": 1, "next_due_at": ANCHOR, "last_completed_at": dt.datetime(2026, 3, 4, 15, 0, tzinfo=dt.UTC)},
            Replanned(dt.datetime(2026, 3, 6, 3, 0, tzinfo=dt.UTC), False),
        ),
        # turned into on_trigger: nothing scheduled any more
        (_spec("on_trigger"), {"made": 1}, Replanned(None, True)),
    ],
)
def test_a_changed_timing_is_replanned_from_now(spec: RecurrenceSpec, state: dict, expected: Replanned) -> None:
    state = {"next_due_at": ANCHOR, "last_completed_at": None, **state}
    assert replanned_next_due(spec, anchor=ANCHOR, cal=CHICAGO, now=NOW, **state) == expected


def test_a_template_no_longer_applicable_ends_and_one_newly_applicable_starts(pathway, site, coordinator, tmp_path):
    patient = PatientFactory(site=site, risk_medications=[])
    enrollment = enrollment_apply(patient_id=patient.pk, pathway_slug="calciphylaxis", actor=coordinator, now=ANCHOR)
    document = copy.deepcopy(bundled_document())
    for template in document["task_templates"]:
        if template["code"] == "wound-assessment":
            template["applies_if"] = {"medications_any": ["warfarin"]}  # no longer applies to this patient
        if template["code"] == "inr-monitoring":
            template["applies_if"] = {"dialysis_modality": ["HD"]}  # now applies (the patient is on HD)
        if template["code"] == "tpa-assessment":
            template["recurrence"] = {"kind": "interval", "every_days": 7}  # on_trigger -> scheduled
    load_document(tmp_path, document)
    assert not Schedule.objects.filter(enrollment=enrollment, task_template__code="inr-monitoring").exists()

    plan = enrollment_migrate(enrollment_id=enrollment.pk, to_version=2, actor=coordinator, now=NOW)

    assert [(s["template"], s["reason"]) for s in plan.schedules_ended] == [
        ("wound-assessment", "not applicable in v2")
    ]
    assert [(t["template"], t["reason"]) for t in plan.tasks_cancelled] == [
        ("wound-assessment", "not applicable in v2")
    ]
    assert {s["template"] for s in plan.schedules_started} == {"inr-monitoring", "tpa-assessment"}
    wound = Schedule.objects.get(enrollment=enrollment, task_template__code="wound-assessment")
    assert wound.status == ScheduleStatus.FINISHED
    assert Task.objects.get(enrollment=enrollment, template__code="wound-assessment").status == TaskStatus.CANCELLED
    for code in ("inr-monitoring", "tpa-assessment"):
        started = Schedule.objects.get(enrollment=enrollment, task_template__code=code)
        assert (started.anchor_at, started.task_template.pathway.version) == (NOW, 2)
        assert Task.objects.filter(enrollment=enrollment, template__code=code, available_at=NOW).count() == 1
