"""Pathway content: the bundled file, idempotent reload, versioning, and invalid content rejected whole."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from pathways.choices import Prong, RecurrenceKind, TemplateStatus
from pathways.errors import ContentError
from pathways.models import Enrollment, PathwayTemplate, Rule, TaskTemplate
from pathways.services.content import pathways_load
from pathways.services.enrollment import enrollment_apply
from tests.factories import PatientFactory

BUNDLED = Path(settings.CAREPATH["CONTENT_DIR"]) / "calciphylaxis.yaml"


def _write(tmp_path: Path, document: dict, name: str = "calciphylaxis.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def document() -> dict:
    return yaml.safe_load(BUNDLED.read_text(encoding="utf-8"))


def test_the_bundled_pathway_holds_every_prong_and_the_templates_of_the_clinical_reference(db) -> None:
    [result] = pathways_load(paths=[BUNDLED])
    pathway = PathwayTemplate.objects.get(slug="calciphylaxis", version=result.version)
    templates = {t.code: t for t in pathway.task_templates.all()}
    assert len(templates) >= 17
    assert {t.prong for t in templates.values()} == set(Prong.values)
    assert templates["inr-monitoring"].applies_if == {"medications_any": ["warfarin"]}
    assert templates["sodium-thiosulfate"].applies_if == {"dialysis_modality": ["HD"]}
    assert templates["sodium-thiosulfate"].recurrence_kind == RecurrenceKind.DIALYSIS_DAYS
    assert templates["dressing-change"].recurrence == {"hours": 48}
    assert templates["hbot-session"].recurrence["weekdays"] == [0, 1, 2, 3, 4]
    assert all(t.citation for t in templates.values())
    rules = set(pathway.rules.values_list("code", flat=True))
    assert {"high-phosphate-or-calcium", "ca-x-p-flag", "sts-safety-hold", "pain-uncontrolled"} <= rules
    assert pathway.citations


def test_loading_the_same_content_twice_changes_nothing(db, capsys) -> None:
    call_command("load_pathways")
    call_command("load_pathways")
    out = capsys.readouterr().out
    assert "v1: new version" in out and "v1: unchanged" in out
    assert PathwayTemplate.objects.count() == 1
    assert TaskTemplate.objects.count() == PathwayTemplate.objects.get().task_templates.count()


def test_changed_content_makes_a_new_version_and_enrollments_stay_pinned(tmp_path, document, coordinator, site) -> None:
    pathways_load(paths=[BUNDLED])
    v1 = PathwayTemplate.objects.get(slug="calciphylaxis", status=TemplateStatus.ACTIVE)
    patient = PatientFactory(site=site)
    enrollment = enrollment_apply(patient_id=patient.pk, pathway_slug="calciphylaxis", actor=coordinator)

    document["task_templates"][0]["due_within_hours"] = 12
    [result] = pathways_load(paths=[_write(tmp_path, document)])
    assert (result.version, result.created) == (2, True)
    v1.refresh_from_db()
    assert v1.status == TemplateStatus.RETIRED
    v2 = PathwayTemplate.objects.get(slug="calciphylaxis", status=TemplateStatus.ACTIVE)
    assert v2.version == 2
    assert v2.task_templates.get(code="team-huddle").due_within_hours == 12
    assert v1.task_templates.get(code="team-huddle").due_within_hours == 24
    assert Enrollment.objects.get(pk=enrollment.pk).template_id == v1.pk


def _mutations():
    """(description, mutate(document), expected template/rule code, expected field)."""

    def template(code):
        return lambda d: next(t for t in d["task_templates"] if t["code"] == code)

    def set_(code, key, value):
        def mutate(d):
            template(code)(d)[key] = value

        return mutate

    def duplicate(d):
        d["task_templates"].append(dict(template("pain-score")(d)))

    def dangling(d):
        template("debridement-decision")(d)["prerequisites"] = ["no-such-template"]

    def bad_rule_role(d):
        rule = next(r for r in d["rules"] if r["code"] == "aluminium-high")
        rule["then"][0]["ad_hoc_task"]["role"] = "astrologer"

    def bad_rule_template(d):
        rule = next(r for r in d["rules"] if r["code"] == "sts-safety-hold")
        rule["then"][0]["hold_schedule"] = "sodium-thiosulphate-typo"

    return [
        ("unknown role", set_("pain-score", "role", "astrologer"), "pain-score", "role"),
        ("unknown prong", set_("nutrition", "prong", "prong_four"), "nutrition", "prong"),
        ("bad recurrence kind", set_("pth-alp", "recurrence", {"kind": "fortnightly"}), "pth-alp", "recurrence.kind"),
        ("interval without a period", set_("pth-alp", "recurrence", {"kind": "interval"}), "pth-alp", "recurrence"),
        (
            "bad weekday",
            set_("hbot-session", "recurrence", {"kind": "weekdays", "weekdays": ["MX"]}),
            "hbot-session",
            "recurrence.weekdays",
        ),
        (
            "after_completion without hours",
            set_("dressing-change", "recurrence", {"kind": "after_completion"}),
            "dressing-change",
            "recurrence.hours",
        ),
        ("duplicate code", duplicate, "pain-score", "code"),
        ("dangling prerequisite", dangling, "debridement-decision", "prerequisites"),
        (
            "unknown applicability",
            set_("inr-monitoring", "applies_if", {"moon_phase": ["full"]}),
            "inr-monitoring",
            "applies_if.moon_phase",
        ),
        ("unknown rule role", bad_rule_role, "aluminium-high", "then[0].ad_hoc_task.role"),
        ("rule naming a missing template", bad_rule_template, "sts-safety-hold", "then[0].hold_schedule"),
        (
            "expiry before the due time",
            set_("sodium-thiosulfate", "expires_after_hours", 3),
            "sodium-thiosulfate",
            "expires_after_hours",
        ),
        (
            "expiry not a whole number",
            set_("pain-score-dialysis", "expires_after_hours", "6h"),
            "pain-score-dialysis",
            "expires_after_hours",
        ),
        (
            "expiry on an after-completion chain",
            set_("dressing-change", "expires_after_hours", 12),
            "dressing-change",
            "expires_after_hours",
        ),
    ]


@pytest.mark.parametrize(("description", "mutate", "code", "field"), _mutations(), ids=[m[0] for m in _mutations()])
def test_invalid_content_is_rejected_naming_file_code_and_field_and_nothing_is_written(
    db, tmp_path, document, description, mutate, code, field
) -> None:
    pathways_load(paths=[BUNDLED])
    before = (PathwayTemplate.objects.count(), TaskTemplate.objects.count(), Rule.objects.count())
    document["title"] = "changed, so a valid file would make a new version"
    mutate(document)
    path = _write(tmp_path, document)
    with pytest.raises(ContentError) as excinfo:
        pathways_load(paths=[path])
    assert any(p[0] == str(path) and p[1] == code and p[2] == field for p in excinfo.value.problems), (
        excinfo.value.message
    )
    assert (PathwayTemplate.objects.count(), TaskTemplate.objects.count(), Rule.objects.count()) == before
    with pytest.raises(CommandError, match="Nothing was written"):
        call_command("load_pathways", str(path))


def test_one_invalid_file_stops_all_files_from_loading(db, tmp_path, document) -> None:
    other = dict(document, slug="calciphylaxis-research")
    good = _write(tmp_path, other, "a-good.yaml")
    document["task_templates"][0]["role"] = "astrologer"
    bad = _write(tmp_path, document, "b-bad.yaml")
    with pytest.raises(ContentError):
        pathways_load(paths=[good, bad])
    assert not PathwayTemplate.objects.exists()


def test_unreadable_and_non_yaml_files_are_clear_errors(db, tmp_path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("slug: [unclosed", encoding="utf-8")
    with pytest.raises(ContentError, match="not valid YAML"):
        pathways_load(paths=[broken])
    with pytest.raises(ContentError, match="cannot be read"):
        pathways_load(paths=[tmp_path / "missing.yaml"])


def test_session_bound_templates_declare_their_window_and_other_content_hashes_as_before(db, document) -> None:
    from pathways.services.content import pathway_content_parse

    [result] = pathways_load(paths=[BUNDLED])
    expiring = dict(
        TaskTemplate.objects.filter(pathway__version=result.version, expires_after_hours__isnull=False).values_list(
            "code", "expires_after_hours"
        )
    )
    assert expiring == {"sodium-thiosulfate": 6, "pain-score-dialysis": 6}
    # A template without the field normalizes without it, so content that never used it keeps its hash.
    parsed = pathway_content_parse(text=yaml.safe_dump(document), source="x")
    plain = next(t for t in parsed["task_templates"] if t["code"] == "pain-score")
    assert "expires_after_hours" not in plain
