"""The whole pathway the sources describe (issue 16): suspected cases, patients not on dialysis, transplant
recipients, standing precautions, and every template and rule citing its source."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from django.conf import settings

from pathways.choices import (
    DiagnosisStatus,
    DialysisModality,
    EnrollmentEventKind,
    EnrollmentStatus,
    FlagSeverity,
    MedicationChangeKind,
    PathwayStage,
    Role,
    TaskStatus,
    TemplateStatus,
)
from pathways.errors import ContentError, IllegalTransition, InvalidInput
from pathways.models import (
    Enrollment,
    EnrollmentEvent,
    Flag,
    PathwayTemplate,
    RuleFiring,
    Schedule,
    Task,
    TaskEvent,
    TaskTemplate,
)
from pathways.services.content import pathway_content_parse, pathways_load
from pathways.services.enrollment import enrollment_apply, enrollment_diagnosis_record
from pathways.services.medications import medication_change_record
from pathways.services.observations import observations_record
from tests.factories import PatientFactory

BUNDLED = Path(settings.CAREPATH["CONTENT_DIR"]) / "calciphylaxis.yaml"
# Monday 2026-03-02 15:00 UTC = 09:00 in Chicago (CST); the site fixture is in Chicago.
MONDAY = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)
THURSDAY = MONDAY + dt.timedelta(days=3)

WORKUP = {
    "workup-dermatology-assessment",
    "workup-biopsy-decision",
    "workup-labs",
    "workup-imaging",
    "workup-rule-outs",
}
UNDERLYING_CAUSE = {
    "cause-primary-hyperparathyroidism",
    "cause-malignancy-screening",
    "cause-liver-disease",
    "cause-autoimmune-serology",
    "protein-c-s",
}


def _template_codes(enrollment: Enrollment) -> set[str]:
    return set(Schedule.objects.filter(enrollment=enrollment).values_list("task_template__code", flat=True))


def _task_codes(enrollment: Enrollment) -> set[str]:
    return set(Task.objects.filter(enrollment=enrollment).values_list("template__code", flat=True))


def _suspected(site, coordinator, **patient) -> Enrollment:
    return enrollment_apply(
        patient_id=PatientFactory(site=site, **patient).pk,
        pathway_slug="calciphylaxis",
        actor=coordinator,
        diagnosis_status=DiagnosisStatus.PROVISIONAL,
        now=MONDAY,
    )


# --- (1) the workup stage ------------------------------------------------------------------------------


def test_a_suspected_case_gets_the_workup_tasks_only(pathway, site, coordinator) -> None:
    enrollment = _suspected(site, coordinator)
    assert enrollment.diagnosis_status == DiagnosisStatus.PROVISIONAL
    assert _template_codes(enrollment) == WORKUP
    assert _task_codes(enrollment) == WORKUP  # all due on day 0
    biopsy = Task.objects.get(enrollment=enrollment, template__code="workup-biopsy-decision")
    assert biopsy.blocked_by == ["workup-dermatology-assessment"]
    assert "non-healing wound" in biopsy.instructions
    labs = Task.objects.get(enrollment=enrollment, template__code="workup-labs")
    for analyte in ("calcium", "phosphorus", "PTH", "aluminium", "urea nitrogen", "creatinine", "albumin", "liver"):
        assert analyte in labs.title
    event = EnrollmentEvent.objects.get(enrollment=enrollment, kind=EnrollmentEventKind.ENROLLED)
    assert event.data["diagnosis_status"] == DiagnosisStatus.PROVISIONAL


def test_enrolling_directly_in_treatment_gets_no_workup_task(pathway, site, coordinator) -> None:
    enrollment = enrollment_apply(
        patient_id=PatientFactory(site=site).pk, pathway_slug="calciphylaxis", actor=coordinator, now=MONDAY
    )
    assert enrollment.diagnosis_status == DiagnosisStatus.CONFIRMED
    codes = _template_codes(enrollment)
    assert not codes & WORKUP
    assert {"team-huddle", "wound-assessment", "sodium-thiosulfate", "pre-dialysis-labs"} <= codes


def test_confirming_starts_the_treatment_tasks_due_from_the_confirmation(pathway, site, coordinator) -> None:
    enrollment = _suspected(site, coordinator)
    enrollment_diagnosis_record(
        enrollment_id=enrollment.pk, diagnosis_status=DiagnosisStatus.CONFIRMED, actor=coordinator, now=THURSDAY
    )
    enrollment.refresh_from_db()
    assert (enrollment.diagnosis_status, enrollment.diagnosis_recorded_at) == (DiagnosisStatus.CONFIRMED, THURSDAY)
    treatment = Schedule.objects.filter(enrollment=enrollment, task_template__stage=PathwayStage.TREATMENT)
    assert {"team-huddle", "wound-assessment", "debridement-decision", "response-review"} <= {
        s.task_template.code for s in treatment
    }
    assert {s.anchor_at for s in treatment} == {THURSDAY}
    huddle = Task.objects.get(enrollment=enrollment, template__code="team-huddle")
    assert huddle.available_at == THURSDAY  # day 0 is the confirmation day, not the enrollment day
    debridement = treatment.get(task_template__code="debridement-decision")
    assert debridement.next_due_at == THURSDAY + dt.timedelta(days=1)
    review = treatment.get(task_template__code="response-review")
    # 28 local calendar days after the confirmation (09:00 in Chicago, after the DST change).
    assert review.next_due_at == dt.datetime(2026, 4, 2, 9, 0, tzinfo=ZoneInfo("America/Chicago"))
    # The workup stays with the team to finish; nothing of it is started twice.
    assert Task.objects.filter(enrollment=enrollment, template__code__in=WORKUP).count() == len(WORKUP)
    assert set(
        Task.objects.filter(enrollment=enrollment, template__code__in=WORKUP).values_list("status", flat=True)
    ) == {TaskStatus.REQUESTED}
    event = EnrollmentEvent.objects.get(enrollment=enrollment, kind=EnrollmentEventKind.DIAGNOSIS_CONFIRMED)
    assert event.actor == coordinator and "team-huddle" in event.data["applied"]


def test_ruling_out_completes_the_enrollment_and_cancels_the_open_workup_with_the_reason(
    pathway, site, coordinator
) -> None:
    enrollment = _suspected(site, coordinator)
    enrollment_diagnosis_record(
        enrollment_id=enrollment.pk,
        diagnosis_status=DiagnosisStatus.REFUTED,
        reason="biopsy shows vasculitis",
        actor=coordinator,
        now=THURSDAY,
    )
    enrollment.refresh_from_db()
    assert enrollment.status == EnrollmentStatus.COMPLETED
    assert enrollment.diagnosis_status == DiagnosisStatus.REFUTED
    assert enrollment.end_reason == "calciphylaxis ruled out: biopsy shows vasculitis"
    tasks = Task.objects.filter(enrollment=enrollment)
    assert _task_codes(enrollment) == WORKUP
    assert set(tasks.values_list("status", flat=True)) == {TaskStatus.CANCELLED}
    cancellations = TaskEvent.objects.filter(task__enrollment=enrollment, to_status=TaskStatus.CANCELLED)
    assert cancellations.count() == len(WORKUP)
    assert all("biopsy shows vasculitis" in e.reason for e in cancellations)
    kinds = list(EnrollmentEvent.objects.filter(enrollment=enrollment).values_list("kind", "reason"))
    assert (EnrollmentEventKind.DIAGNOSIS_REFUTED, "biopsy shows vasculitis") in kinds
    assert kinds[-1][0] == EnrollmentEventKind.COMPLETED


def test_a_diagnosis_is_recorded_once_with_a_reason_when_ruled_out(pathway, site, coordinator) -> None:
    enrollment = _suspected(site, coordinator)
    with pytest.raises(InvalidInput, match="why"):
        enrollment_diagnosis_record(
            enrollment_id=enrollment.pk, diagnosis_status=DiagnosisStatus.REFUTED, reason=" ", actor=coordinator
        )
    with pytest.raises(InvalidInput):
        enrollment_diagnosis_record(
            enrollment_id=enrollment.pk, diagnosis_status=DiagnosisStatus.PROVISIONAL, actor=coordinator
        )
    enrollment.refresh_from_db()
    assert (enrollment.diagnosis_status, enrollment.status) == (DiagnosisStatus.PROVISIONAL, EnrollmentStatus.ACTIVE)
    assert _template_codes(enrollment) == WORKUP

    enrollment_diagnosis_record(
        enrollment_id=enrollment.pk, diagnosis_status=DiagnosisStatus.CONFIRMED, actor=coordinator, now=THURSDAY
    )
    schedules = Schedule.objects.filter(enrollment=enrollment).count()
    with pytest.raises(IllegalTransition, match="already confirmed"):
        enrollment_diagnosis_record(
            enrollment_id=enrollment.pk, diagnosis_status=DiagnosisStatus.CONFIRMED, actor=coordinator
        )
    assert Schedule.objects.filter(enrollment=enrollment).count() == schedules


def test_a_nurse_cannot_record_the_diagnosis(pathway, site, coordinator, wound_nurse) -> None:
    from pathways.errors import NotPermitted

    enrollment = _suspected(site, coordinator)
    with pytest.raises(NotPermitted):
        enrollment_diagnosis_record(
            enrollment_id=enrollment.pk, diagnosis_status=DiagnosisStatus.CONFIRMED, actor=wound_nurse
        )


# --- (2) applicability by modality ---------------------------------------------------------------------


def test_a_patient_not_on_dialysis_gets_no_dialysis_work_and_gets_the_underlying_cause_workup(
    pathway, site, coordinator
) -> None:
    patient = PatientFactory(
        site=site, dialysis_modality=DialysisModality.NONE, dialysis_days=[], dialysis_session_time=None
    )
    enrollment = enrollment_apply(patient_id=patient.pk, pathway_slug="calciphylaxis", actor=coordinator, now=MONDAY)
    templates = TaskTemplate.objects.filter(schedules__enrollment=enrollment)
    assert templates.exists()
    for template in templates:
        assert template.role != Role.DIALYSIS_NURSING, template.code
        assert "dialys" not in f"{template.title} {template.instructions}".lower(), template.code
    codes = _template_codes(enrollment)
    assert codes >= UNDERLYING_CAUSE
    assert "mineral-labs" in codes and "pre-dialysis-labs" not in codes
    assert templates.get(code="mineral-labs").role == Role.NEPHROLOGY
    assert "ANA" in templates.get(code="cause-autoimmune-serology").title
    assert templates.get(code="protein-c-s").role == Role.HEMATOLOGY
    assert not Task.objects.filter(enrollment=enrollment, role=Role.DIALYSIS_NURSING).exists()


def test_a_hemodialysis_patient_gets_no_underlying_cause_workup_and_keeps_the_dialysis_labs(
    pathway, site, coordinator
) -> None:
    enrollment = enrollment_apply(
        patient_id=PatientFactory(site=site).pk, pathway_slug="calciphylaxis", actor=coordinator, now=MONDAY
    )
    codes = _template_codes(enrollment)
    assert not codes & UNDERLYING_CAUSE
    assert "pre-dialysis-labs" in codes and "mineral-labs" not in codes
    assert "immunosuppression-review" not in codes


def _transplant(site, coordinator) -> Enrollment:
    patient = PatientFactory(
        site=site, dialysis_modality=DialysisModality.TRANSPLANT, dialysis_days=[], dialysis_session_time=None
    )
    return enrollment_apply(patient_id=patient.pk, pathway_slug="calciphylaxis", actor=coordinator, now=MONDAY)


def test_a_transplant_recipient_gets_the_immunosuppression_review_and_no_dialysis_work(
    pathway, site, coordinator
) -> None:
    enrollment = _transplant(site, coordinator)
    schedule = Schedule.objects.get(enrollment=enrollment, task_template__code="immunosuppression-review")
    assert schedule.next_due_at == MONDAY + dt.timedelta(days=1)
    assert schedule.task_template.role == Role.NEPHROLOGY
    assert not TaskTemplate.objects.filter(schedules__enrollment=enrollment, role=Role.DIALYSIS_NURSING).exists()


def test_a_worsening_wound_repeats_the_immunosuppression_review_for_a_transplant_recipient_only(
    pathway, site, coordinator
) -> None:
    transplant = _transplant(site, coordinator)
    hd = enrollment_apply(
        patient_id=PatientFactory(site=site).pk, pathway_slug="calciphylaxis", actor=coordinator, now=MONDAY
    )
    later = MONDAY + dt.timedelta(days=7)
    for enrollment in (transplant, hd):
        observations_record(
            enrollment_id=enrollment.pk, values=[], findings=["new_lesion"], actor=coordinator, now=later
        )
    repeat = Task.objects.get(enrollment=transplant, template__code="immunosuppression-review")
    assert repeat.rule_code == "immunosuppression-if-lesions-persist"
    assert repeat.due_at == later + dt.timedelta(hours=72)
    assert not Task.objects.filter(enrollment=hd, template__code="immunosuppression-review").exists()
    assert not RuleFiring.objects.filter(enrollment=hd, rule_code="immunosuppression-if-lesions-persist").exists()
    # The other worsening work is the same for both.
    assert Task.objects.filter(enrollment=hd, rule_code="wound-worsening").count() == 2


def test_no_improvement_at_the_response_review_repeats_the_immunosuppression_review(pathway, site, coordinator) -> None:
    enrollment = _transplant(site, coordinator)
    at = MONDAY + dt.timedelta(days=28)
    observations_record(enrollment_id=enrollment.pk, values=[], findings=["no_improvement"], actor=coordinator, now=at)
    repeats = Task.objects.filter(enrollment=enrollment, rule_code="immunosuppression-if-lesions-persist")
    assert repeats.filter(template__code="immunosuppression-review").exists()


# --- (3) precautions -----------------------------------------------------------------------------------


def test_the_bundled_pathway_declares_the_skin_precaution_for_the_nurses(pathway) -> None:
    [precaution] = pathway.precautions
    assert precaution["code"] == "avoid-local-tissue-trauma"
    assert "no subcutaneous injections" in precaution["text"]
    assert "transfusions" in precaution["text"]
    assert set(precaution["roles"]) == {Role.WOUND_NURSING, Role.DIALYSIS_NURSING}
    assert precaution["citation"]


@pytest.mark.parametrize(("route", "flagged"), [("subcutaneous", True), ("oral", False), ("", False)])
def test_a_subcutaneous_medication_raises_the_precaution_flag(pathway, site, coordinator, route, flagged) -> None:
    enrollment = enrollment_apply(
        patient_id=PatientFactory(site=site).pk, pathway_slug="calciphylaxis", actor=coordinator, now=MONDAY
    )
    result = medication_change_record(
        enrollment_id=enrollment.pk,
        medication="corticosteroid",
        drug_name="dexamethasone 4 mg",
        kind=MedicationChangeKind.STARTED,
        route=route,
        actor=coordinator,
        now=MONDAY + dt.timedelta(hours=1),
    )
    assert result.change.route == route
    flags = Flag.objects.filter(enrollment=enrollment, code="precaution-avoid-local-tissue-trauma")
    assert flags.exists() is flagged
    if flagged:
        flag = flags.get()
        assert flag.severity == FlagSeverity.ALERT
        assert "avoid-local-tissue-trauma" in flag.message and "no subcutaneous injections" in flag.message


def test_an_unknown_route_is_rejected_and_nothing_is_written(pathway, site, coordinator) -> None:
    enrollment = enrollment_apply(
        patient_id=PatientFactory(site=site).pk, pathway_slug="calciphylaxis", actor=coordinator, now=MONDAY
    )
    with pytest.raises(InvalidInput, match="unknown route 'sc'"):
        medication_change_record(
            enrollment_id=enrollment.pk, medication="iron", drug_name="iron", route="sc", actor=coordinator
        )
    assert not Flag.objects.exists() and not RuleFiring.objects.exists()


# --- (4) nutrition -------------------------------------------------------------------------------------


def test_the_dietitian_is_told_to_advise_a_diet_low_in_calcium_and_phosphate(pathway) -> None:
    nutrition = pathway.task_templates.get(code="nutrition")
    assert nutrition.role == Role.DIETETICS
    assert "low in calcium and phosphate" in nutrition.instructions


# --- (5) traceability and versions ---------------------------------------------------------------------


def _bundled() -> dict:
    return yaml.safe_load(BUNDLED.read_text(encoding="utf-8"))


def test_every_bundled_template_rule_and_precaution_cites_a_source_or_is_proposed(pathway) -> None:
    items = [*pathway.task_templates.all(), *pathway.rules.all()]
    assert all(item.citation.strip() for item in items)
    assert all(p["citation"].strip() for p in pathway.precautions)


@pytest.mark.parametrize("section", ["task_templates", "rules"])
def test_the_loader_refuses_a_template_or_rule_without_a_citation(db, section) -> None:
    document = _bundled()
    del document[section][0]["citation"]
    code = document[section][0]["code"]
    with pytest.raises(ContentError) as excinfo:
        pathway_content_parse(text=yaml.safe_dump(document), source="edited.yaml")
    [(_, problem_code, field, message)] = excinfo.value.problems
    assert (problem_code, field) == (code, "citation")
    assert "Proposed" in message and "clinical reference" in message


def test_a_proposed_mark_is_a_citation(db) -> None:
    document = _bundled()
    document["task_templates"][0]["citation"] = "Proposed: no published cadence."
    assert pathway_content_parse(text=yaml.safe_dump(document), source="edited.yaml")["task_templates"]


def test_the_loader_refuses_a_precaution_for_an_unknown_role_or_without_a_citation(db) -> None:
    document = _bundled()
    document["precautions"][0]["roles"] = ["wound_nursing", "janitor"]
    del document["precautions"][0]["citation"]
    with pytest.raises(ContentError) as excinfo:
        pathway_content_parse(text=yaml.safe_dump(document), source="edited.yaml")
    fields = {(code, field) for _, code, field, _ in excinfo.value.problems}
    assert fields == {("avoid-local-tissue-trauma", "roles"), ("avoid-local-tissue-trauma", "citation")}


def test_the_content_change_is_a_new_version_and_existing_enrollments_keep_theirs(
    db, tmp_path, site, coordinator
) -> None:
    # The content as it was before issue 16: no precautions, no workup, no stage.
    before = _bundled()
    del before["precautions"]
    before["task_templates"] = [t for t in before["task_templates"] if "stage" not in t]
    path = tmp_path / "calciphylaxis.yaml"
    path.write_text(yaml.safe_dump(before, sort_keys=False), encoding="utf-8")
    pathways_load(paths=[path])
    v1 = PathwayTemplate.objects.get(slug="calciphylaxis", status=TemplateStatus.ACTIVE)
    old = enrollment_apply(
        patient_id=PatientFactory(site=site).pk, pathway_slug="calciphylaxis", actor=coordinator, now=MONDAY
    )

    [result] = pathways_load(paths=[BUNDLED])
    assert result.created and result.version == v1.version + 1
    v1.refresh_from_db()
    assert v1.status == TemplateStatus.RETIRED and v1.precautions == []
    old.refresh_from_db()
    assert old.template_id == v1.pk
    new = enrollment_apply(
        patient_id=PatientFactory(site=site).pk,
        pathway_slug="calciphylaxis",
        actor=coordinator,
        diagnosis_status=DiagnosisStatus.PROVISIONAL,
        now=MONDAY,
    )
    assert new.template.version == result.version and new.template.precautions
    assert _template_codes(new) == WORKUP


def test_the_docs_list_every_template_and_rule_with_its_source(pathway) -> None:
    from pathways.services.content import pathway_sources_table

    expected = pathway_sources_table(document=pathway_content_parse(text=BUNDLED.read_text(), source="bundled"))
    for doc in ("pathway-content.md", "clinical-rules.md"):
        text = (Path(settings.BASE_DIR) / "docs" / doc).read_text(encoding="utf-8")
        start, end = "<!-- sources-table:start -->\n", "<!-- sources-table:end -->"
        assert start in text and end in text, doc
        shown = text.split(start, 1)[1].split(end, 1)[0]
        assert shown == expected, f"{doc} is out of date; regenerate with manage.py load_pathways --sources-table"


def test_a_change_to_a_suspected_patient_re_plans_the_workup_only(pathway, site, coordinator) -> None:
    # Issue 14's re-planning meets issue 16's stages: starting warfarin during the workup must not start INR
    # monitoring (a treatment template); confirming the diagnosis later does.
    from pathways.services.patients import patient_update

    enrollment = _suspected(site, coordinator, dialysis_modality=DialysisModality.HEMODIALYSIS, risk_medications=[])
    before = _template_codes(enrollment)
    result = patient_update(
        patient_id=enrollment.patient_id,
        actor=coordinator,
        changes={"risk_medications": ["warfarin"]},
        now=MONDAY + dt.timedelta(hours=1),
    )
    assert [o.started for o in result.replanned] == [[]]
    assert _template_codes(enrollment) == before
    assert not before & {"inr-monitoring"} and before <= WORKUP | UNDERLYING_CAUSE
    enrollment_diagnosis_record(
        enrollment_id=enrollment.pk, diagnosis_status=DiagnosisStatus.CONFIRMED, actor=coordinator, now=THURSDAY
    )
    assert "inr-monitoring" in _template_codes(enrollment)
