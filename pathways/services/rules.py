"""The rule engine: evaluates the enrollment's pinned pathway version's rules against newly recorded data.

One engine for every trigger (observations, derived values, assessment findings, medication changes). The
condition grammar is the one pathways.services.content._check_condition validates; keep the two in step.

Definitions (docs/clinical-rules.md):
- A condition on an observation code looks only at values recorded in this trigger: an old phosphate does
  not re-fire when a pain score arrives.
- ``trend: rising``: the new value is higher than the previous value of that code (by effective time).
- ``trend: worse_consecutive, count: N``: the last N changes were all increases (N+1 values, higher = worse).
- ``rise_from_baseline: X``: the new value minus the first value recorded at or after enrollment is >= X.
- ``times_upper_normal: F``: compared with F x the observation's reference_high (the lab's upper normal).
- Dedupe: while a task a rule made (same enrollment, rule code, template or role+title) is open, a new
  firing links its trigger to that task instead of creating another; the same for an active flag.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from django.db.models import Q

from pathways.choices import (
    OPEN_TASK_STATUSES,
    MedicationChangeKind,
    Priority,
    RuleOutcome,
    ScheduleStatus,
    TaskEventKind,
    TaskStatus,
)
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


@dataclass
class RulesResult:
    firings: list[RuleFiring] = field(default_factory=list)
    tasks_created: list[Task] = field(default_factory=list)
    flags_raised: list[Flag] = field(default_factory=list)
    flags_cleared: list[Flag] = field(default_factory=list)


@dataclass(frozen=True)
class Match:
    """One reason a condition held: the observation (None for events) and the values compared."""

    observation: Observation | None
    data: dict[str, Any]


def _num(value: Any) -> Decimal:
    return Decimal(str(value))


def _s(value: Decimal) -> str:
    return format(value.normalize(), "f")


# --- conditions ----------------------------------------------------------------------------------------


def _previous(obs: Observation, count: int) -> list[Observation]:
    """Up to `count` values of the same code before `obs` (by effective time), newest first."""
    return list(
        Observation.objects.filter(enrollment_id=obs.enrollment_id, code=obs.code)
        .filter(Q(effective_at__lt=obs.effective_at) | Q(effective_at=obs.effective_at, pk__lt=obs.pk))
        .order_by("-effective_at", "-pk")[:count]
    )


def _observation_matches(cond: dict[str, Any], obs: Observation, enrollment: Enrollment) -> dict[str, Any] | None:
    data: dict[str, Any] = {"observation": obs.pk, "code": obs.code, "value": _s(obs.value), "unit": obs.unit}
    op = cond.get("op")
    if op in ("gt", "ge", "lt", "le"):
        if "times_upper_normal" in cond:
            if obs.reference_high is None:
                return None
            factor = _num(cond["times_upper_normal"])
            limit = factor * obs.reference_high
            data.update(
                times_upper_normal=_s(factor),
                reference_high=_s(obs.reference_high),
                reference_high_defaulted=obs.reference_high_defaulted,
            )
        else:
            limit = _num(cond["value"])
        held = {
            "gt": obs.value > limit,
            "ge": obs.value >= limit,
            "lt": obs.value < limit,
            "le": obs.value <= limit,
        }[op]
        data.update(op=op, threshold=_s(limit))
        return data if held else None
    if op == "outside":
        low, high = _num(cond["low"]), _num(cond["high"])
        data.update(op="outside", low=_s(low), high=_s(high))
        return data if (obs.value < low or obs.value > high) else None
    if cond.get("trend") == "rising":
        previous = _previous(obs, 1)
        if not previous or obs.value <= previous[0].value:
            return None
        data.update(trend="rising", previous=_s(previous[0].value), previous_observation=previous[0].pk)
        return data
    if cond.get("trend") == "worse_consecutive":
        count = int(cond.get("count", 2))
        series = [obs, *_previous(obs, count)]  # newest first
        if len(series) < count + 1 or any(series[i].value <= series[i + 1].value for i in range(count)):
            return None
        data.update(trend="worse_consecutive", count=count, series=[_s(o.value) for o in reversed(series)])
        return data
    if "rise_from_baseline" in cond:
        baseline = (
            Observation.objects.filter(enrollment_id=obs.enrollment_id, code=obs.code)
            .filter(effective_at__gte=enrollment.enrolled_at)
            .order_by("effective_at", "pk")
            .first()
        )
        if baseline is None or baseline.pk == obs.pk:
            return None
        rise = obs.value - baseline.value
        if rise < _num(cond["rise_from_baseline"]):
            return None
        data.update(baseline=_s(baseline.value), baseline_observation=baseline.pk, rise=_s(rise))
        return data
    raise ValueError(f"condition not understood: {cond!r}")  # content validation makes this unreachable


def _evaluate(cond: dict[str, Any], trigger: RuleTrigger, enrollment: Enrollment) -> list[Match]:
    """The reasons `cond` holds for this trigger; empty means it does not hold."""
    if "any" in cond:
        return [m for sub in cond["any"] for m in _evaluate(sub, trigger, enrollment)]
    if "all" in cond:
        parts = [_evaluate(sub, trigger, enrollment) for sub in cond["all"]]
        return [m for part in parts for m in part] if all(parts) else []
    if "event" in cond:
        if cond["event"] == "finding":
            hit = [f for f in trigger.findings if f in cond["findings_any"]]
            return [Match(None, {"findings": hit})] if hit else []
        if cond["event"] == "medication_started":
            change = trigger.medication_change
            if change and change.kind == MedicationChangeKind.STARTED and change.medication in cond["medications_any"]:
                return [Match(None, {"medication": change.medication, "drug_name": change.drug_name})]
        return []
    code = cond.get("observation") or cond.get("derived")
    matches = []
    for obs in trigger.observations:
        if obs.code == code:
            data = _observation_matches(cond, obs, enrollment)
            if data is not None:
                matches.append(Match(obs, data))
    return matches


def _codes_in(cond: dict[str, Any]) -> set[str]:
    if "any" in cond or "all" in cond:
        return {c for sub in cond.get("any", cond.get("all", [])) for c in _codes_in(sub)}
    code = cond.get("observation") or cond.get("derived")
    return {code} if code else set()


# --- actions -------------------------------------------------------------------------------------------


def _describe(rule: Rule, matches: list[Match]) -> str:
    reasons = []
    for m in matches:
        d = m.data
        if "findings" in d:
            reasons.append("finding: " + ", ".join(d["findings"]))
        elif "medication" in d:
            reasons.append(f"new order: {d['drug_name']} ({d['medication']})")
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
    template = ctx.enrollment.template.task_templates.get(code=action["create_task"])
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
        new = replace(new, title=f"{template.title} (new order: {change.drug_name})"[:255])
    new = replace(new, instructions=f"{_describe(ctx.rule, ctx.matches)}\n\n{new.instructions}".strip())
    _task_or_link(ctx, new, _open_rule_tasks(ctx).filter(template=template))


def _ad_hoc_task(ctx: _Context, action: dict[str, Any]) -> None:
    spec = action["ad_hoc_task"]
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
    spec = action["flag"]
    active = Flag.objects.filter(enrollment=ctx.enrollment, code=spec["code"], cleared_at__isnull=True).first()
    if active is not None:
        ctx.firing(RuleOutcome.FLAG_LINKED, flag=active)
        return
    flag = Flag.objects.create(
        enrollment=ctx.enrollment,
        code=spec["code"],
        rule_code=ctx.rule.code,
        severity=spec.get("severity", "soft"),
        message=str(spec.get("message") or ctx.rule.description)[:500],
        source_observation=ctx.matches[0].observation,
        raised_at=ctx.now,
    )
    ctx.result.flags_raised.append(flag)
    ctx.firing(RuleOutcome.FLAG_RAISED, flag=flag)


def _hold_schedule(ctx: _Context, action: dict[str, Any]) -> None:
    code = action["hold_schedule"]
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


ACTIONS = {"create_task": _create_task, "ad_hoc_task": _ad_hoc_task, "flag": _flag, "hold_schedule": _hold_schedule}


def _clear_flags(
    enrollment: Enrollment, rule: Rule, trigger: RuleTrigger, now: dt.datetime, result: RulesResult
) -> None:
    """A rule that raised a flag did not hold for a new value of a code it looks at: that value is back in range."""
    codes = _codes_in(rule.when)
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
    """Run the enrollment's pinned version's rules for this trigger (caller holds the transaction and the lock)."""
    result = RulesResult()
    rules = Rule.objects.filter(pathway_id=enrollment.template_id).order_by("position")
    for rule in rules:
        matches = _evaluate(rule.when, trigger, enrollment)
        if not matches:
            if any("flag" in a for a in rule.actions):
                _clear_flags(enrollment, rule, trigger, now, result)
            continue
        ctx = _Context(enrollment, rule, trigger, matches, actor, now, result)
        for action in rule.actions:
            (kind,) = set(action) & set(ACTIONS)
            ACTIONS[kind](ctx, action)
        logger.info("rule fired: enrollment=%s rule=%s", enrollment.pk, rule.code)
    return result
