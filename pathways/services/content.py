"""Loading pathway content files into versioned PathwayTemplates (validate everything, then write all or nothing)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from django.db import transaction
from django.db.models import Max

from pathways.choices import (
    SPECIALIST_ROLES,
    WEEKDAY_CODES,
    DialysisModality,
    FlagSeverity,
    PathwayStage,
    Priority,
    Prong,
    RecurrenceKind,
    RiskMedication,
    RuleAction,
    TemplateStatus,
)
from pathways.domain.conditions import condition_check, unknown_value
from pathways.domain.recurrence import RecurrenceSpec, parse_hhmm, validate_spec
from pathways.errors import ContentError
from pathways.models import PathwayTemplate, Rule, TaskTemplate

Problem = tuple[str, str, str, str]  # (file, code, field, message)

TOP_KEYS = {"slug", "title", "description", "citations", "precautions", "task_templates", "rules"}
TEMPLATE_KEYS = {
    "code",
    "title",
    "prong",
    "stage",
    "role",
    "supporting_roles",
    "priority",
    "first_due",
    "due_within_hours",
    "expires_after_hours",
    "recurrence",
    "applies_if",
    "prerequisites",
    "instructions",
    "citation",
}
RULE_KEYS = {"code", "description", "when", "then", "citation"}
PRECAUTION_KEYS = {"code", "text", "roles", "citation"}
# Every template, rule and precaution says where it comes from (issue 16): a source named in
# shared/clinical/calciphylaxis-pathway.md, or "Proposed: ..." when no published figure was found.
CITATION_REQUIRED = "is required: name a source from the clinical reference, or start with 'Proposed'"


@dataclass(frozen=True)
class LoadResult:
    """What loading one file did."""

    source: str
    slug: str
    version: int
    created: bool  # False when identical content was already the active version
    task_templates: int
    rules: int


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _Checker:
    """Collects problems for one file instead of stopping at the first."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []

    def add(self, code: str, field: str, message: str) -> None:
        self.problems.append((self.source, code, field, message))

    def choice(self, code: str, field: str, value: object, allowed: Iterable[str]) -> None:
        allowed = list(allowed)
        if value not in allowed:
            self.add(code, field, unknown_value(value, allowed))


def _normalize_template(raw: dict[str, Any], position: int, check: _Checker) -> dict[str, Any]:
    code = str(raw.get("code") or "")
    for key in sorted(set(raw) - TEMPLATE_KEYS):
        check.add(code, key, "unknown field")
    for key in ("code", "title", "prong", "role", "recurrence"):
        if not raw.get(key):
            check.add(code, key, "is required")
    check.choice(code, "prong", raw.get("prong"), Prong.values)
    stage = raw.get("stage", PathwayStage.TREATMENT)
    check.choice(code, "stage", stage, PathwayStage.values)
    check.choice(code, "role", raw.get("role"), SPECIALIST_ROLES)
    if not str(raw.get("citation") or "").strip():
        check.add(code, "citation", CITATION_REQUIRED)
    supporting = raw.get("supporting_roles") or []
    if not isinstance(supporting, list):
        check.add(code, "supporting_roles", "must be a list of roles")
        supporting = []
    for role in supporting:
        check.choice(code, "supporting_roles", role, SPECIALIST_ROLES)
    priority = raw.get("priority", Priority.ROUTINE)
    check.choice(code, "priority", priority, Priority.values)
    window = raw.get("due_within_hours", 24)
    if not _is_int(window) or window < 1:
        check.add(code, "due_within_hours", "must be a whole number of hours, at least 1")

    first_due = raw.get("first_due") or {}
    if not isinstance(first_due, dict) or set(first_due) - {"day", "at"}:
        check.add(code, "first_due", "must be a mapping with 'day' and optionally 'at' (HH:MM)")
        first_due = {}
    if "day" in first_due and not _is_int(first_due["day"]):
        check.add(code, "first_due.day", "must be a whole number of days")
    if first_due.get("at"):
        try:
            parse_hhmm(first_due["at"])
        except ValueError as exc:
            check.add(code, "first_due.at", str(exc))

    recurrence = dict(raw.get("recurrence") or {})
    kind = recurrence.pop("kind", None)
    allowed_params = {"every_hours", "every_days", "weekdays", "at", "hours", "count", "until_day"}
    for key in sorted(set(recurrence) - allowed_params):
        check.add(code, f"recurrence.{key}", "unknown field")
    if "weekdays" in recurrence:
        names = recurrence["weekdays"] if isinstance(recurrence["weekdays"], list) else [recurrence["weekdays"]]
        bad = [d for d in names if d not in WEEKDAY_CODES]
        if bad:
            check.add(code, "recurrence.weekdays", f"unknown day(s) {bad}; use MO TU WE TH FR SA SU")
        recurrence["weekdays"] = sorted({WEEKDAY_CODES[d] for d in names if d in WEEKDAY_CODES})
    if recurrence.get("at"):
        try:
            parse_hhmm(recurrence["at"])
        except ValueError as exc:
            check.add(code, "recurrence.at", str(exc))
            recurrence.pop("at")
    if kind is not None:
        try:
            spec = RecurrenceSpec.from_fields(
                kind=kind,
                first_due={k: v for k, v in first_due.items() if k == "day" and _is_int(v)},
                recurrence=recurrence,
            )
        except (TypeError, ValueError) as exc:
            check.add(code, "recurrence", str(exc))
        else:
            for field, message in validate_spec(spec):
                check.add(code, field, message)
    if kind == RecurrenceKind.ON_TRIGGER and first_due:
        check.add(code, "first_due", "on_trigger templates are never scheduled; remove first_due")
    expires = raw.get("expires_after_hours")
    if expires is not None:
        _check_expiry(code, expires, window=window, kind=kind, check=check)

    applies_if = raw.get("applies_if") or {}
    if not isinstance(applies_if, dict):
        check.add(code, "applies_if", "must be a mapping")
        applies_if = {}
    for key in sorted(set(applies_if) - {"dialysis_modality", "medications_any"}):
        check.add(code, f"applies_if.{key}", "unknown condition; use dialysis_modality or medications_any")
    for value in applies_if.get("dialysis_modality", []):
        check.choice(code, "applies_if.dialysis_modality", value, DialysisModality.values)
    for value in applies_if.get("medications_any", []):
        check.choice(code, "applies_if.medications_any", value, RiskMedication.values)

    prerequisites = raw.get("prerequisites") or []
    if not isinstance(prerequisites, list):
        check.add(code, "prerequisites", "must be a list of template codes")
        prerequisites = []

    normalized = {
        "code": code,
        "title": str(raw.get("title") or ""),
        "prong": raw.get("prong"),
        "stage": stage,
        "role": raw.get("role"),
        "supporting_roles": list(supporting),
        "priority": priority,
        "first_due": first_due if kind != RecurrenceKind.ON_TRIGGER else {},
        "due_within_hours": window,
        "recurrence_kind": kind,
        "recurrence": recurrence,
        "applies_if": applies_if,
        "prerequisites": list(prerequisites),
        "instructions": str(raw.get("instructions") or "").strip(),
        "citation": str(raw.get("citation") or "").strip(),
        "position": position,
    }
    # Only when given: content without it normalizes (and hashes) as before, so reloading it changes nothing.
    if expires is not None:
        normalized["expires_after_hours"] = expires
    return normalized


# Session-bound work follows a calendar. An after-completion chain waits for its open occurrence (a late
# dressing change is still due), and on_trigger work is never scheduled: neither has a session to miss.
_EXPIRING_KINDS = frozenset(
    {RecurrenceKind.ONCE, RecurrenceKind.INTERVAL, RecurrenceKind.WEEKDAYS, RecurrenceKind.DIALYSIS_DAYS}
)


def _check_expiry(code: str, expires: object, *, window: object, kind: object, check: _Checker) -> None:
    """`expires_after_hours`: whole hours, not before the due time, on a calendar recurrence only."""
    if not isinstance(expires, int) or isinstance(expires, bool) or expires < 1:
        check.add(code, "expires_after_hours", "must be a whole number of hours, at least 1")
    elif isinstance(window, int) and expires < window:
        check.add(
            code,
            "expires_after_hours",
            f"must be at least due_within_hours ({window}): work cannot be missed before it is due",
        )
    if kind is not None and kind not in _EXPIRING_KINDS:
        check.add(
            code,
            "expires_after_hours",
            f"only session-bound (calendar) recurrences expire; not {kind} "
            f"(use one of {', '.join(sorted(_EXPIRING_KINDS))})",
        )


def _check_actions(actions: object, template_codes: set[str], code: str, check: _Checker) -> None:
    if not isinstance(actions, list) or not actions:
        check.add(code, "then", "must be a non-empty list of actions")
        return
    for i, action in enumerate(actions):
        field = f"then[{i}]"
        kinds = set(RuleAction.values) & set(action) if isinstance(action, dict) else set()
        if not isinstance(action, dict) or len(kinds) != 1:
            check.add(code, field, f"each action is exactly one of {', '.join(RuleAction.values)}")
            continue
        kind = kinds.pop()
        options = {k: v for k, v in action.items() if k != kind}
        if kind in (RuleAction.CREATE_TASK, RuleAction.HOLD_SCHEDULE) and action[kind] not in template_codes:
            check.add(code, f"{field}.{kind}", f"no task template with code {action[kind]!r} in this pathway")
        if kind == RuleAction.CREATE_TASK:
            for key in sorted(set(options) - {"priority", "due_within_hours"}):
                check.add(code, f"{field}.{key}", "unknown field")
            if "priority" in options:
                check.choice(code, f"{field}.priority", options["priority"], Priority.values)
        elif kind == RuleAction.AD_HOC_TASK:
            spec = action[kind] if isinstance(action[kind], dict) else {}
            for key in ("title", "role", "prong"):
                if not spec.get(key):
                    check.add(code, f"{field}.ad_hoc_task.{key}", "is required")
            check.choice(code, f"{field}.ad_hoc_task.role", spec.get("role"), SPECIALIST_ROLES)
            check.choice(code, f"{field}.ad_hoc_task.prong", spec.get("prong"), Prong.values)
            check.choice(code, f"{field}.ad_hoc_task.priority", spec.get("priority", Priority.URGENT), Priority.values)
        elif kind == RuleAction.FLAG:
            spec = action[kind] if isinstance(action[kind], dict) else {}
            if not spec.get("code"):
                check.add(code, f"{field}.flag.code", "is required")
            check.choice(code, f"{field}.flag.severity", spec.get("severity", FlagSeverity.SOFT), FlagSeverity.values)
        due = options.get("due_within_hours", (action.get(RuleAction.AD_HOC_TASK) or {}).get("due_within_hours", 24))
        if not _is_int(due) or due < 1:
            check.add(code, f"{field}.due_within_hours", "must be a whole number of hours, at least 1")


def _normalize_precautions(raw: object, check: _Checker) -> list[dict[str, Any]]:
    """Standing precautions: [{code, text, roles: [Role, ...], citation}], each shown to the roles it names."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        check.add("", "precautions", "must be a list of {code, text, roles, citation}")
        return []
    out, codes = [], set()
    for position, item in enumerate(raw):
        if not isinstance(item, dict):
            check.add(f"precaution #{position}", "(precaution)", "must be a mapping")
            continue
        code = str(item.get("code") or f"precaution #{position}")
        for key in sorted(set(item) - PRECAUTION_KEYS):
            check.add(code, key, "unknown field")
        for key in ("code", "text"):
            if not str(item.get(key) or "").strip():
                check.add(code, key, "is required")
        if not str(item.get("citation") or "").strip():
            check.add(code, "citation", CITATION_REQUIRED)
        if code in codes:
            check.add(code, "code", "duplicate precaution code")
        codes.add(code)
        roles = item.get("roles")
        if not isinstance(roles, list) or not roles:
            check.add(code, "roles", "must be a non-empty list of roles")
            roles = []
        for role in roles:
            check.choice(code, "roles", role, SPECIALIST_ROLES)
        out.append(
            {
                "code": code,
                "text": str(item.get("text") or "").strip(),
                "roles": list(roles),
                "citation": str(item.get("citation") or "").strip(),
            }
        )
    return out


def pathway_content_parse(*, text: str, source: str) -> dict[str, Any]:
    """Validate one content document and return its normalized form; raises ContentError listing every problem."""
    check = _Checker(source)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ContentError([(source, "", "(file)", f"not valid YAML: {exc}")]) from exc
    if not isinstance(raw, dict):
        raise ContentError([(source, "", "(file)", "must be a mapping with slug, title, task_templates, rules")])
    for key in sorted(set(raw) - TOP_KEYS):
        check.add("", key, "unknown top-level field")
    for key in ("slug", "title", "task_templates"):
        if not raw.get(key):
            check.add("", key, "is required")

    templates: list[dict[str, Any]] = []
    seen: set[str] = set()
    raw_templates = raw.get("task_templates") or []
    if not isinstance(raw_templates, list):
        check.add("", "task_templates", "must be a list")
        raw_templates = []
    for position, item in enumerate(raw_templates):
        if not isinstance(item, dict):
            check.add(f"#{position}", "(template)", "must be a mapping")
            continue
        normalized = _normalize_template(item, position, check)
        if normalized["code"] in seen:
            check.add(normalized["code"], "code", "duplicate template code")
        seen.add(normalized["code"])
        templates.append(normalized)
    for template in templates:
        for prerequisite in template["prerequisites"]:
            if prerequisite not in seen:
                check.add(template["code"], "prerequisites", f"no task template with code {prerequisite!r}")
            elif prerequisite == template["code"]:
                check.add(template["code"], "prerequisites", "a template cannot wait for itself")

    rules: list[dict[str, Any]] = []
    rule_codes: set[str] = set()
    raw_rules = raw.get("rules") or []
    if not isinstance(raw_rules, list):
        check.add("", "rules", "must be a list")
        raw_rules = []
    for position, item in enumerate(raw_rules):
        code = str((item or {}).get("code") or f"rule #{position}") if isinstance(item, dict) else f"rule #{position}"
        if not isinstance(item, dict):
            check.add(code, "(rule)", "must be a mapping")
            continue
        for key in sorted(set(item) - RULE_KEYS):
            check.add(code, key, "unknown field")
        if code in rule_codes:
            check.add(code, "code", "duplicate rule code")
        rule_codes.add(code)
        for field, message in condition_check(item.get("when"), "when"):
            check.add(code, field, message)
        _check_actions(item.get("then"), seen, code, check)
        if not str(item.get("citation") or "").strip():
            check.add(code, "citation", CITATION_REQUIRED)
        rules.append(
            {
                "code": code,
                "description": str(item.get("description") or "").strip(),
                "when": item.get("when"),
                "actions": item.get("then"),
                "citation": str(item.get("citation") or "").strip(),
                "position": position,
            }
        )

    precautions = _normalize_precautions(raw.get("precautions"), check)

    if check.problems:
        raise ContentError(check.problems)
    document = {
        "slug": raw["slug"],
        "title": raw["title"],
        "description": str(raw.get("description") or "").strip(),
        "citations": list(raw.get("citations") or []),
        "precautions": precautions,
        "task_templates": templates,
        "rules": rules,
    }
    document["content_hash"] = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
    return document


def _write_document(document: dict[str, Any], source: str) -> LoadResult:
    slug = document["slug"]
    active = PathwayTemplate.objects.select_for_update().filter(slug=slug, status=TemplateStatus.ACTIVE).first()
    if active is not None and active.content_hash == document["content_hash"]:
        return LoadResult(source, slug, active.version, False, active.task_templates.count(), active.rules.count())
    latest = PathwayTemplate.objects.filter(slug=slug).aggregate(v=Max("version"))["v"] or 0
    if active is not None:
        active.status = TemplateStatus.RETIRED
        active.save(update_fields=["status"])
    pathway = PathwayTemplate.objects.create(
        slug=slug,
        version=latest + 1,
        title=document["title"],
        description=document["description"],
        status=TemplateStatus.ACTIVE,
        citations=document["citations"],
        precautions=document["precautions"],
        content_hash=document["content_hash"],
        source_file=source,
    )
    TaskTemplate.objects.bulk_create([TaskTemplate(pathway=pathway, **t) for t in document["task_templates"]])
    Rule.objects.bulk_create([Rule(pathway=pathway, **r) for r in document["rules"]])
    return LoadResult(source, slug, pathway.version, True, len(document["task_templates"]), len(document["rules"]))


def pathways_load(*, paths: list[Path], progress: Callable[[str], None] | None = None) -> list[LoadResult]:
    """Validate every file, then write them all in one transaction: nothing is written if any file is invalid."""
    documents: list[tuple[dict[str, Any], str]] = []
    problems: list[Problem] = []
    for path in paths:
        try:
            documents.append(
                (pathway_content_parse(text=path.read_text(encoding="utf-8"), source=str(path)), str(path))
            )
        except ContentError as exc:
            problems.extend(exc.problems)
        except OSError as exc:
            problems.append((str(path), "", "(file)", f"cannot be read: {exc.strerror}"))
    slugs = [doc["slug"] for doc, _ in documents]
    for slug in {s for s in slugs if slugs.count(s) > 1}:
        problems.append(("(several files)", "", "slug", f"slug {slug!r} appears in more than one file"))
    if problems:
        raise ContentError(problems)
    results = []
    with transaction.atomic():
        for document, source in documents:
            result = _write_document(document, source)
            if progress:
                state = "new version" if result.created else "unchanged"
                progress(
                    f"{result.slug} v{result.version}: {state} ({result.task_templates} task templates, "
                    f"{result.rules} rules) from {Path(source).name}"
                )
            results.append(result)
    return results


def content_files(directory: Path) -> list[Path]:
    """The content files in a directory, in a stable order."""
    return sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ").strip() or "—"


def pathway_sources_table(*, document: dict[str, Any]) -> str:
    """Markdown tables listing every precaution, task template and rule of a parsed document with its citation.

    docs/pathway-content.md and docs/clinical-rules.md carry this text between their sources-table markers
    (a test checks they match the bundled file); `manage.py load_pathways --sources-table` prints it.
    """
    lines = [
        f"Generated from `{document['slug']}` ({len(document['task_templates'])} task templates, "
        f"{len(document['rules'])} rules). A citation that says *proposed* marks a default for which no "
        "published figure was found.",
        "",
        "| precaution | roles | source |",
        "|---|---|---|",
    ]
    lines += [
        f"| `{p['code']}`: {_cell(p['text'])} | {', '.join(p['roles'])} | {_cell(p['citation'])} |"
        for p in document["precautions"]
    ]
    lines += ["", "| task template | stage | role | applies if | source |", "|---|---|---|---|---|"]
    for t in document["task_templates"]:
        applies = "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in sorted(t["applies_if"].items()))
        lines.append(
            f"| `{t['code']}` {_cell(t['title'])} | {t['stage']} | {t['role']} | {_cell(applies)} "
            f"| {_cell(t['citation'])} |"
        )
    lines += ["", "| rule | description | source |", "|---|---|---|"]
    lines += [f"| `{r['code']}` | {_cell(r['description'])} | {_cell(r['citation'])} |" for r in document["rules"]]
    return "\n".join(lines) + "\n"
