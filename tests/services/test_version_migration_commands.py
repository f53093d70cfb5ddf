"""The operator commands of version migration: pathway_diff and migrate_enrollments."""

from __future__ import annotations

import io
import json

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError

from pathways.choices import EnrollmentEventKind
from pathways.models import Enrollment, EnrollmentEvent
from pathways.services.enrollment import enrollment_apply, enrollment_hold
from tests.factories import PatientFactory
from tests.services.test_version_migration import MONDAY, THURSDAY
from tests.versions import ADDED, REMOVED, REPLANNED, RULE_CHANGED, load_document, version_two_document


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def _enrol_three(site, coordinator) -> list[Enrollment]:
    with time_machine.travel(MONDAY, tick=False):
        return [
            enrollment_apply(patient_id=PatientFactory(site=site).pk, pathway_slug="calciphylaxis", actor=coordinator)
            for _ in range(3)
        ]


def test_pathway_diff_prints_each_change_and_json_on_request(pathway, tmp_path) -> None:
    load_document(tmp_path, version_two_document())
    text = _run("pathway_diff", "calciphylaxis", "1", "2")
    assert text.splitlines()[0] == "calciphylaxis v1 -> v2"
    assert f"  + task template {ADDED}" in text
    assert f"  - task template {REMOVED}" in text
    assert f"  ~ task template {REPLANNED}" in text
    assert '      recurrence: {"kind": "interval", "every_days": 7} -> {"kind": "interval", "every_days": 3}' in text
    assert f"  ~ rule {RULE_CHANGED}" in text
    as_json = json.loads(_run("pathway_diff", "calciphylaxis", "1", "2", "--json"))
    assert as_json["task_templates"]["added"] == [ADDED]
    with pytest.raises(CommandError, match="no version 7"):
        _run("pathway_diff", "calciphylaxis", "1", "7")


def test_migrate_enrollments_dry_run_changes_nothing_then_the_run_moves_and_skips_on_hold(
    pathway, tmp_path, site, coordinator
) -> None:
    first, held, third = _enrol_three(site, coordinator)
    enrollment_hold(enrollment_id=held.pk, actor=coordinator, reason="away", now=MONDAY)
    load_document(tmp_path, version_two_document())

    with time_machine.travel(THURSDAY, tick=False):
        dry = _run("migrate_enrollments", "calciphylaxis", "--to", "2", "--dry-run")
    assert f"enrollment {first.pk}: v1 -> v2" in dry and f"enrollment {held.pk}:" not in dry
    assert "removed in v2" in dry and f"start schedule {ADDED}" in dry
    assert "dry run: 2 enrollments would move to v2" in dry
    assert "skipped 1 on-hold enrollments (--include-on-hold to move them)" in dry
    assert not EnrollmentEvent.objects.filter(kind=EnrollmentEventKind.MIGRATED).exists()

    with time_machine.travel(THURSDAY, tick=False):
        done = _run("migrate_enrollments", "calciphylaxis", "--to", "2", "--batch-size", "1")
    assert "1/2 done (1 moved, 0 already moved, 0 failed)" in done
    assert "moved 2 enrollments to v2; 0 were already on it; 0 failed" in done
    assert "skipped 1 on-hold enrollments" in done
    versions = dict(Enrollment.objects.values_list("pk", "template__version"))
    assert versions == {first.pk: 2, held.pk: 1, third.pk: 2}

    again = _run("migrate_enrollments", "calciphylaxis", "--to", "2")
    assert "moved 0 enrollments" in again
    one = _run("migrate_enrollments", "calciphylaxis", "--to", "2", "--enrollment", str(held.pk), "--include-on-hold")
    assert f"enrollment {held.pk}: v1 -> v2" in one
    assert Enrollment.objects.get(pk=held.pk).template.version == 2
