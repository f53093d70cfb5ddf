"""The rule engine: evaluates the enrollment's pinned pathway version's rules against newly recorded data.

One engine for every trigger (observations, derived values, assessment findings, medication changes).
Conditions (grammar, validation and evaluation) are defined once, in pathways.domain.conditions; this module
supplies the history they read (``ObservationHistory``) and performs the actions, keyed on ``RuleAction``.

Definitions (docs/clinical-rules.md):
- A condition on an observation code looks only at values recorded in this trigger: an old phosphate does
  not re-fire when a pain score arrives.
- Dedupe: while a task a rule made (same enrollment, rule code, template or role+title) is open, a new
  firing links its trigger to that task instead of creating another; the same for an active flag.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field, replace
from typing import Any

from django.db.models import Q

from pathways.choices import (
    OPEN_TASK_STATUSES,
    FlagSeverity,
    MedicationChangeKind,
    Priority,
    RuleAction,
    RuleOutcome,
    ScheduleStatus,
    TaskEventKind,
    TaskStatus,
)
from pathways.domain.applicability import template_applies
from pathways.domain.conditions import Match, condition_parse
from pathways.models import (
    Assessment,
    Enrollment,
    Flag,
    MedicationChange,
    Observation,
    Rule,
    RuleFiring,
    Schedule,
    Task,
    TaskEvent,
    User,
)
from pathways.services.schedules import schedule_hold_for_safety
from pathways.services.task_creation import NewTask, new_task_from_template, tasks_create
from pathways.services.tasks import TaskChange, task_changes_record, task_hold

logger = logging.getLogger(__name__)


@dataclass
class RuleTrigger:
    """What was just recorded: rules look at these (and at history only for trends and baselines)."""

    observations: list[Observation] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    assessment: Assessment | None = None
    medication_change: MedicationChange | None = None
    # The patient's current therapies; rules_evaluate fills it from the patient record.
    therapies: list[str] = field(default_factory=list)


@dataclass
class RulesResult:
    firings: list[RuleFiring] = field(default_factory=list)
    tasks_created: list[Task] = field(default_factory=list)
    flags_raised: list[Flag] = field(default_factory=list)
    flags_cleared: list[Flag] = field(default_factory=list)


# --- conditions ----------------------------------------------------------------------------------------


class ObservationHistory:
    """The enrollment's earlier observations, as pathways.domain.conditions.History reads them (trends, baselines)."""

    def __init__(self, enrollment: Enrollment) -> None:
        self.enrollment = enrollment

    def previous(self, obs: Observation, count: int) -> list[Observation]:
        """Up to `count` values of the same code before `obs` (by effective time, then id), newest first."""
        return list(
            Observation.objects.filter(enrollment_id=obs.enrollment_id, code=obs.code)
            .filter(Q(effective_at__lt=obs.effective_at) | Q(effective_at=obs.effective_at, pk__lt=obs.pk))
            .order_by("-effective_at", "-pk")[:count]
        )

    def baseline(self, obs: Observation) -> Observation | None:
        """The first value of the code recorded at or after enrollment (may be `obs` itself), or None."""
        return (
            Observation.objects.filter(enrollment_id=obs.enrollment_id, code=obs.code)
            .filter(effective_at__gte=self.enrollment.enrolled_at)
            .order_by("effective_at", "pk")
            .first()
        )


# --- actions -------------------------------------------------------------------------------------------


_ORDER_WORDS: dict[str, str] = {
    MedicationChangeKind.STARTED: "new order",
    MedicationChangeKind.DOSE_CHANGED: "dose change",
}


def _describe(rule: Rule, matches: list[Match]) -> str:
    reasons = []
    for m in matches:
        d = m.data
        if "findings" in d:
            reasons.append("finding: " + ", ".join(d["findings"]))
        elif "route" in d:
            reasons.append(f"{d['drug_name']} ({d['medication']}) by the {d['route']} route")
        elif "medication" in d:
            reasons.append(f"{_ORDER_WORDS.get(d.get('kind', ''), 'new order')}: {d['drug_name']} ({d['medication']})")
        elif "therapies" in d:
            reasons.append("current therapy: " + ", ".join(d["therapies"]))
        else:
            reasons.append(f"{d['code']} {d['value']} {d['unit']}")
    return f"{rule.description}\nTriggered by: {'; '.join(reasons)}."


@dataclass
class _Context:
    enrollment: Enrollment
    rule: Rule
    trigger: RuleTrigger
    matches: list[Match]
    actor: User | None
    now: dt.datetime
    result: RulesResult

    def firing(self, outcome: str, **links: Any) -> RuleFiring:
        firing = RuleFiring.objects.create(
            enrollment=self.enrollment,
            rule=self.rule,
            rule_code=self.rule.code,
            outcome=outcome,
            observation=self.matches[0].observation,
            assessment=self.trigger.assessment,
            medication_change=self.trigger.medication_change,
            data={"matches": [m.data for m in self.matches], **links.pop("data", {})},
            fired_at=self.now,
            **links,
        )
        self.result.firings.append(firing)
        return firing


def _task_or_link(ctx: _Context, new: NewTask, open_tasks: Any) -> None:
    existing = open_tasks.order_by("created_at", "pk").first()
    if existing is not None:
        # Dedupe: the open task already asks for this work; the new reason is attached to it.
        event = TaskEvent(
            task=existing,
            kind=TaskEventKind.UPDATED,
            at=ctx.now,
            actor=ctx.actor,
            reason=f"rule {ctx.rule.code} fired again",
            data={"rule": ctx.rule.code, "matches": [m.data for m in ctx.matches]},
        )
        task_changes_record([TaskChange(existing, events=[event])])
        ctx.firing(RuleOutcome.TASK_LINKED, task=existing)
        return
    (task,) = tasks_create(
        enrollment_id=ctx.enrollment.pk,
        new_tasks=[new],
        actor=ctx.actor,
        reason=f"rule {ctx.rule.code}",
        now=ctx.now,
    )
    ctx.result.tasks_created.append(task)
    ctx.firing(RuleOutcome.TASK_CREATED, task=task)


def _open_rule_tasks(ctx: _Context) -> Any:
    return Task.objects.filter(enrollment=ctx.enrollment, rule_code=ctx.rule.code, status__in=OPEN_TASK_STATUSES)


def _create_task(ctx: _Context, action: dict[str, Any]) -> None:
    template = ctx.enrollment.template.task_templates.get(code=action[RuleAction.CREATE_TASK])
    if not template_applies(template, ctx.enrollment.patient, stage=None):
        # Work for other patients (e.g. the transplant-only immunosuppression review): nothing to do, nothing
        # recorded, as a rule whose condition did not hold.
        return
    # A rule's urgent work is not held back behind routine prerequisites: the finding is the reason to act now.
    new = new_task_from_template(
        template,
        available_at=ctx.now,
        completed_codes=set(template.prerequisites),
        priority=action.get("priority"),
        due_within_hours=action.get("due_within_hours"),
        rule_code=ctx.rule.code,
    )
    change = ctx.trigger.medication_change
    if change is not None:
        words = _ORDER_WORDS.get(change.kind, "new order")
        new = replace(new, title=f"{template.title} ({words}: {change.drug_name})"[:255])
    new = replace(new, instructions=f"{_describe(ctx.rule, ctx.matches)}\n\n{new.instructions}".strip())
    _task_or_link(ctx, new, _open_rule_tasks(ctx).filter(template=template))


def _ad_hoc_task(ctx: _Context, action: dict[str, Any]) -> None:
    spec = action[RuleAction.AD_HOC_TASK]
    due = dt.timedelta(hours=int(spec.get("due_within_hours", 24)))
    new = NewTask(
        title=spec["title"],
        prong=spec["prong"],
        role=spec["role"],
        priority=spec.get("priority", Priority.URGENT),
        available_at=ctx.now,
        due_at=ctx.now + due,
        rule_code=ctx.rule.code,
        instructions=_describe(ctx.rule, ctx.matches),
    )
    open_tasks = _open_rule_tasks(ctx).filter(template__isnull=True, role=spec["role"], title=spec["title"])
    _task_or_link(ctx, new, open_tasks)


def _flag(ctx: _Context, action: dict[str, Any]) -> None:
    spec = action[RuleAction.FLAG]
    active = Flag.objects.filter(enrollment=ctx.enrollment, code=spec["code"], cleared_at__isnull=True).first()
    if active is not None:
        ctx.firing(RuleOutcome.FLAG_LINKED, flag=active)
        return
    flag = Flag.objects.create(
        enrollment=ctx.enrollment,
        code=spec["code"],
        rule_code=ctx.rule.code,
        severity=spec.get("severity", FlagSeverity.SOFT),
        message=str(spec.get("message") or ctx.rule.description)[:500],
        source_observation=ctx.matches[0].observation,
        raised_at=ctx.now,
    )
    ctx.result.flags_raised.append(flag)
    ctx.firing(RuleOutcome.FLAG_RAISED, flag=flag)


def _hold_schedule(ctx: _Context, action: dict[str, Any]) -> None:
    code = action[RuleAction.HOLD_SCHEDULE]
    schedule = (
        Schedule.objects.select_for_update()
        .filter(enrollment=ctx.enrollment, task_template__code=code)
        .exclude(status=ScheduleStatus.FINISHED)
        .first()
    )
    if schedule is None:
        # e.g. a peritoneal-dialysis patient has no sodium thiosulfate schedule to hold.
        ctx.firing(RuleOutcome.NOTHING_TO_HOLD, data={"template": code})
        return
    reason = f"held by rule {ctx.rule.code}"
    schedule_hold_for_safety(schedule=schedule, reason=reason, now=ctx.now)
    held = []
    # Occurrences already in the queue are held too: no dose is given until a clinician releases the hold.
    for task in Task.objects.filter(schedule=schedule, status__in=OPEN_TASK_STATUSES).exclude(
        status=TaskStatus.ON_HOLD
    ):
        task_hold(task_id=task.pk, actor=None, expected_version=None, reason=reason, now=ctx.now)
        held.append(task.pk)
    ctx.firing(RuleOutcome.SCHEDULE_HELD, schedule=schedule, data={"template": code, "held_tasks": held})


ACTIONS = {
    RuleAction.CREATE_TASK: _create_task,
    RuleAction.AD_HOC_TASK: _ad_hoc_task,
    RuleAction.FLAG: _flag,
    RuleAction.HOLD_SCHEDULE: _hold_schedule,
}


def _clear_flags(
    enrollment: Enrollment, rule: Rule, codes: set[str], trigger: RuleTrigger, now: dt.datetime, result: RulesResult
) -> None:
    """A rule that raised a flag did not hold for a new value of a code it looks at: that value is back in range."""
    newer = [o for o in trigger.observations if o.code in codes]
    if not newer:
        return
    latest = max(newer, key=lambda o: (o.effective_at, o.pk))
    for flag in Flag.objects.select_for_update().filter(
        enrollment=enrollment, rule_code=rule.code, cleared_at__isnull=True
    ):
        # A late-arriving older value does not clear a flag raised on a newer one.
        source_at = flag.source_observation.effective_at if flag.source_observation else None
        if source_at is not None and latest.effective_at < source_at:
            continue
        flag.cleared_at, flag.cleared_by_observation = now, latest
        flag.save(update_fields=["cleared_at", "cleared_by_observation"])
        result.flags_cleared.append(flag)


def rules_evaluate(
    *, enrollment: Enrollment, trigger: RuleTrigger, actor: User | None, now: dt.datetime
) -> RulesResult:
    """Run the enrollment's pinned version's rules for this trigger (caller holds the transaction and the lock).

    Conditions on current therapies read the patient record as it is now (``Patient.current_therapies``).
    """
    trigger = replace(trigger, therapies=list(enrollment.patient.current_therapies or []))
    result = RulesResult()
    history = ObservationHistory(enrollment)
    rules = Rule.objects.filter(pathway_id=enrollment.template_id).order_by("position")
    for rule in rules:
        condition = condition_parse(rule.when)
        matches = condition.matches(trigger, history)
        if not matches:
            if any(RuleAction.FLAG in a for a in rule.actions):
                _clear_flags(enrollment, rule, condition.codes(), trigger, now, result)
            continue
        ctx = _Context(enrollment, rule, trigger, matches, actor, now, result)
        for action in rule.actions:
            (kind,) = set(action) & set(ACTIONS)
            ACTIONS[kind](ctx, action)
        logger.info("rule fired: enrollment=%s rule=%s", enrollment.pk, rule.code)
    return result
