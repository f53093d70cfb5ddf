"""The rule engine: every rule at, just below and just above its threshold; dedupe; flags; pinned versions."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.conf import settings

from pathways.choices import OPEN_TASK_STATUSES, Priority, Role, RuleOutcome, TaskEventKind, TaskStatus
from pathways.models import Flag, RuleFiring, Task, TaskEvent
from pathways.services.content import pathways_load
from pathways.services.enrollment import enrollment_apply
from pathways.services.observations import ObservationInput, observations_record
from pathways.services.tasks import task_transition
from tests.clinical.conftest import ENROLLED_AT, fired
from tests.factories import PatientFactory

# (rule, values recorded first, the value at the threshold's edge, does the rule fire?)
# Calcium rules are given albumin 4.0 g/dL, so corrected calcium equals measured calcium.
ALB = ("albumin", "4.0", "g/dL")
THRESHOLDS = [
    # phosphate > 5.5 mg/dL
    ("high-phosphate-or-calcium", [], ("phosphate", "5.4", "mg/dL"), False),
    ("high-phosphate-or-calcium", [], ("phosphate", "5.5", "mg/dL"), False),
    ("high-phosphate-or-calcium", [], ("phosphate", "5.6", "mg/dL"), True),
    # corrected calcium > 10.2 mg/dL
    ("high-phosphate-or-calcium", [ALB], ("calcium", "10.1", "mg/dL"), False),
    ("high-phosphate-or-calcium", [ALB], ("calcium", "10.2", "mg/dL"), False),
    ("high-phosphate-or-calcium", [ALB], ("calcium", "10.3", "mg/dL"), True),
    # ... including through the albumin correction: 9.9 + 0.8 x (4.0 - 3.5) = 10.3
    ("high-phosphate-or-calcium", [("albumin", "3.5", "g/dL")], ("calcium", "9.9", "mg/dL"), True),
    # corrected calcium < 8.4 mg/dL
    ("low-calcium", [ALB], ("calcium", "8.3", "mg/dL"), True),
    ("low-calcium", [ALB], ("calcium", "8.4", "mg/dL"), False),
    ("low-calcium", [ALB], ("calcium", "8.5", "mg/dL"), False),
    # Ca x P >= 55 (calcium 10, albumin 4)
    ("ca-x-p-flag", [ALB, ("calcium", "10", "mg/dL")], ("phosphate", "5.49", "mg/dL"), False),
    ("ca-x-p-flag", [ALB, ("calcium", "10", "mg/dL")], ("phosphate", "5.5", "mg/dL"), True),
    ("ca-x-p-flag", [ALB, ("calcium", "10", "mg/dL")], ("phosphate", "5.51", "mg/dL"), True),
    # PTH > 9 x upper normal (65 pg/mL default -> 585)
    ("pth-very-high", [], ("pth", "584", "pg/mL"), False),
    ("pth-very-high", [], ("pth", "585", "pg/mL"), False),
    ("pth-very-high", [], ("pth", "586", "pg/mL"), True),
    # PTH < 2 x upper normal (-> 130)
    ("pth-low", [], ("pth", "129", "pg/mL"), True),
    ("pth-low", [], ("pth", "130", "pg/mL"), False),
    ("pth-low", [], ("pth", "131", "pg/mL"), False),
    # aluminium > 25 ng/mL
    ("aluminium-high", [], ("aluminium", "24.9", "ng/mL"), False),
    ("aluminium-high", [], ("aluminium", "25", "ng/mL"), False),
    ("aluminium-high", [], ("aluminium", "25.1", "ug/L"), True),
    # fever >= 38.0 degC
    ("infection-signs", [], ("temperature", "37.9", "degC"), False),
    ("infection-signs", [], ("temperature", "38.0", "degC"), True),
    ("infection-signs", [], ("temperature", "100.6", "degF"), True),  # 38.1 degC
    # rising WBC / CRP
    ("infection-signs", [("wbc", "9.0", "10^9/L")], ("wbc", "8.9", "10^9/L"), False),
    ("infection-signs", [("wbc", "9.0", "10^9/L")], ("wbc", "9.0", "10^9/L"), False),
    ("infection-signs", [("wbc", "9.0", "10^9/L")], ("wbc", "9.1", "10^9/L"), True),
    ("infection-signs", [("crp", "20", "mg/L")], ("crp", "2.1", "mg/dL"), True),  # 21 mg/L
    ("infection-signs", [("crp", "20", "mg/L")], ("crp", "2.0", "mg/dL"), False),
    # INR outside 2.0-3.0
    ("inr-out-of-range", [], ("inr", "1.9", ""), True),
    ("inr-out-of-range", [], ("inr", "2.0", ""), False),
    ("inr-out-of-range", [], ("inr", "3.0", ""), False),
    ("inr-out-of-range", [], ("inr", "3.1", ""), True),
    # pain >= 7 (first value: no trend)
    ("pain-uncontrolled", [], ("pain_score", 6, "score"), False),
    ("pain-uncontrolled", [], ("pain_score", 7, "score"), True),
    ("pain-uncontrolled", [], ("pain_score", 8, "score"), True),
    # pain rising
    ("pain-uncontrolled", [("pain_score", 4, "score")], ("pain_score", 3, "score"), False),
    ("pain-uncontrolled", [("pain_score", 4, "score")], ("pain_score", 4, "score"), False),
    ("pain-uncontrolled", [("pain_score", 4, "score")], ("pain_score", 5, "score"), True),
    # BWAT-CUA worse on two consecutive assessments (three rising scores)
    ("wound-worsening", [("bwat_cua", 20, "")], ("bwat_cua", 22, ""), False),
    ("wound-worsening", [("bwat_cua", 20, ""), ("bwat_cua", 22, "")], ("bwat_cua", 22, ""), False),
    ("wound-worsening", [("bwat_cua", 20, ""), ("bwat_cua", 22, "")], ("bwat_cua", 23, ""), True),
    ("wound-worsening", [("bwat_cua", 24, ""), ("bwat_cua", 22, "")], ("bwat_cua", 23, ""), False),
    # systolic BP < 90 mmHg
    ("sts-safety-hold", [], ("systolic_bp", 89, "mmHg"), True),
    ("sts-safety-hold", [], ("systolic_bp", 90, "mmHg"), False),
    ("sts-safety-hold", [], ("systolic_bp", 91, "mmHg"), False),
    # anion gap up >= 6 from the first value after enrollment
    ("sts-safety-hold", [("anion_gap", 12, "mmol/L")], ("anion_gap", 17, "mmol/L"), False),
    ("sts-safety-hold", [("anion_gap", 12, "mmol/L")], ("anion_gap", 18, "mmol/L"), True),
    ("sts-safety-hold", [("anion_gap", 12, "mmol/L")], ("anion_gap", 19, "mEq/L"), True),
    # albumin < 3.5 g/dL
    ("low-albumin", [], ("albumin", "3.4", "g/dL"), True),
    ("low-albumin", [], ("albumin", "3.5", "g/dL"), False),
    ("low-albumin", [], ("albumin", "36", "g/L"), False),
]


@pytest.mark.parametrize(("rule", "before", "value", "fires"), THRESHOLDS)
def test_each_rule_fires_only_beyond_its_threshold(record, rule, before, value, fires) -> None:
    for earlier in before:
        record(earlier)
    assert fired(record(value), rule) is fires


@pytest.mark.parametrize(
    ("findings", "rule"),
    [
        (["new_ulcer"], "urgent-huddle"),
        (["purulence"], "infection-signs"),
        (["new_lesion"], "wound-worsening"),
        (["draining"], "wet-wound"),
        (["vomiting"], "sts-safety-hold"),
        (["claustrophobia"], "hbot-intolerance"),
        (["progression"], "progression-consider-tpa"),
        (["no_improvement"], "no-improvement"),
        (["weight_loss"], "low-albumin"),
    ],
)
def test_assessment_findings_fire_their_rules(record, findings, rule) -> None:
    result = record(findings=tuple(findings))
    assert fired(result, rule)
    assert result.assessment is not None and result.assessment.findings == findings


def test_a_rule_firing_creates_a_task_for_the_right_role_due_within_its_window(record) -> None:
    result = record(("phosphate", "6.2", "mg/dL"), hours=3)
    (task,) = result.tasks_created
    assert (task.role, task.rule_code, task.priority) == (Role.NEPHROLOGY, "high-phosphate-or-calcium", Priority.URGENT)
    assert task.due_at - task.available_at == dt.timedelta(hours=48)
    assert "phosphate 6.2 mg/dL" in task.instructions
    (firing,) = result.firings
    assert (firing.outcome, firing.task_id, firing.observation_id) == (
        RuleOutcome.TASK_CREATED,
        task.pk,
        result.observations[0].pk,
    )


def test_a_rule_that_fires_again_while_its_task_is_open_links_to_that_task(record, enrollment) -> None:
    first = record(("phosphate", "6.2", "mg/dL"))
    (task,) = first.tasks_created
    second = record(("phosphate", "6.8", "mg/dL"))
    assert second.tasks_created == []
    (link,) = second.firings
    assert (link.outcome, link.task_id, link.observation_id) == (
        RuleOutcome.TASK_LINKED,
        task.pk,
        second.observations[0].pk,
    )
    assert TaskEvent.objects.filter(task=task, kind=TaskEventKind.UPDATED, reason__contains="fired again").count() == 1
    assert Task.objects.filter(enrollment=enrollment, rule_code="high-phosphate-or-calcium").count() == 1

    # Once that task is closed, the next high value asks for new work.
    task_transition(task_id=task.pk, to_status=TaskStatus.CANCELLED, actor=None, expected_version=None, reason="seen")
    third = record(("phosphate", "7.0", "mg/dL"))
    assert len(third.tasks_created) == 1
    assert Task.objects.filter(enrollment=enrollment, rule_code="high-phosphate-or-calcium").count() == 2


def test_wound_worsening_asks_dermatology_and_surgery_and_dedupes_each(record) -> None:
    first = record(findings=("new_lesion",))
    assert sorted(t.role for t in first.tasks_created) == [Role.DERMATOLOGY, Role.PLASTIC_SURGERY]
    assert all(t.due_at - t.available_at == dt.timedelta(hours=72) for t in first.tasks_created)
    second = record(findings=("new_lesion",))
    assert second.tasks_created == []
    assert [f.outcome for f in second.firings] == [RuleOutcome.TASK_LINKED, RuleOutcome.TASK_LINKED]


def test_ca_x_p_raises_a_soft_flag_once_and_a_later_value_in_range_clears_it(record, enrollment) -> None:
    record(("albumin", "4.0", "g/dL"), ("calcium", "10.0", "mg/dL"), ("phosphate", "6.0", "mg/dL"))  # 60
    flag = Flag.objects.get(enrollment=enrollment, code="ca-x-p-high", cleared_at__isnull=True)
    assert flag.severity == "soft" and flag.source_observation.code == "ca_x_p"
    again = record(("phosphate", "5.8", "mg/dL"))  # 58: still high, same flag
    assert [f.outcome for f in again.firings if f.rule_code == "ca-x-p-flag"] == [RuleOutcome.FLAG_LINKED]
    assert Flag.objects.filter(enrollment=enrollment, code="ca-x-p-high").count() == 1

    back = record(("phosphate", "5.0", "mg/dL"))  # 50: back in range
    flag.refresh_from_db()
    assert flag.cleared_at is not None
    assert flag.cleared_by_observation.code == "ca_x_p"
    assert flag in back.flags_cleared
    # An unrelated value neither raises nor clears anything.
    assert record(("pain_score", 2, "")).flags_cleared == []


def test_rules_come_from_the_pinned_version_not_the_newest(
    record, enrollment, pathway, coordinator, site, tmp_path: Path
) -> None:
    source = (Path(settings.CAREPATH["CONTENT_DIR"]) / "calciphylaxis.yaml").read_text()
    old, new = "{observation: phosphate, op: gt, value: 5.5}", "{observation: phosphate, op: gt, value: 6.5}"
    edited = source.replace(old, new)
    assert edited != source
    (tmp_path / "calciphylaxis.yaml").write_text(edited)
    (loaded,) = pathways_load(paths=[tmp_path / "calciphylaxis.yaml"])
    assert loaded.version == pathway.version + 1

    # The existing enrollment keeps version 1's threshold (5.5) ...
    assert fired(record(("phosphate", "6.0", "mg/dL")), "high-phosphate-or-calcium")
    # ... while a new enrollment follows the new version's (6.5).
    newcomer = enrollment_apply(
        patient_id=PatientFactory(site=site).pk, pathway_slug="calciphylaxis", actor=coordinator, now=ENROLLED_AT
    )
    result = observations_record(
        enrollment_id=newcomer.pk, values=[ObservationInput("phosphate", "6.0", "mg/dL")], actor=None, now=ENROLLED_AT
    )
    assert not fired(result, "high-phosphate-or-calcium")
    result = observations_record(
        enrollment_id=newcomer.pk, values=[ObservationInput("phosphate", "6.6", "mg/dL")], actor=None, now=ENROLLED_AT
    )
    assert fired(result, "high-phosphate-or-calcium")


def test_a_realistic_panel_makes_exactly_the_work_the_reference_asks_for(record, enrollment) -> None:
    """Pre-dialysis labs in SI units for a patient with calciphylaxis: every consequence, nothing more."""
    before = set(Task.objects.filter(enrollment=enrollment).values_list("pk", flat=True))
    result = record(
        ("calcium", "2.45", "mmol/L"),  # 9.8196 mg/dL; corrected with albumin 3.2: 10.4596 > 10.2
        ("albumin", "32", "g/L"),  # 3.2 g/dL < 3.5 -> dietitian
        ("phosphate", "2.1", "mmol/L"),  # 6.5037 mg/dL > 5.5; Ca x P 68.03 >= 55 -> soft flag
        ("bicarbonate", "21", "mmol/L"),
        ("anion_gap", "14", "mmol/L"),  # baseline
        ("pth", "70", "pmol/L", None, "6.9"),  # 660.1 pg/mL, upper normal 65.067 -> 10.1x > 9x
        ("aluminium", "12", "ug/L"),
    )
    derived = {o.code: str(o.value) for o in result.derived}
    assert derived == {"corrected_calcium": "10.4596", "ca_x_p": "68.0261"}
    assert {f.rule_code for f in result.firings} == {
        "high-phosphate-or-calcium",
        "ca-x-p-flag",
        "pth-very-high",
        "low-albumin",
    }
    new_tasks = Task.objects.filter(enrollment=enrollment).exclude(pk__in=before)
    assert sorted((t.role, t.rule_code) for t in new_tasks) == [
        (Role.DIETETICS, "low-albumin"),
        (Role.ENDOCRINOLOGY, "pth-very-high"),
        (Role.NEPHROLOGY, "high-phosphate-or-calcium"),
    ]
    assert all(t.status in OPEN_TASK_STATUSES and t.assignee_id is None for t in new_tasks)
    assert list(Flag.objects.filter(enrollment=enrollment).values_list("code", flat=True)) == ["ca-x-p-high"]
    assert RuleFiring.objects.filter(enrollment=enrollment).count() == 4
