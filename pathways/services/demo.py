"""Synthetic demo data: three sites, a user for every role, about 20 enrolled patients with up to three weeks of
worked history, and, for the Chicago patients enrolled two weeks ago or more, weekly wound assessments with a
BWAT-CUA score, measurements and photographs of two lesions (images drawn with Pillow: no real photographs).
Idempotent."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from PIL import Image, ImageDraw

from pathways.choices import (
    LIVE_ENROLLMENT_STATUSES,
    SPECIALIST_ROLES,
    DiagnosisStatus,
    DialysisModality,
    RiskFactor,
    Role,
    Sex,
    TaskStatus,
)
from pathways.errors import DomainError
from pathways.models import Enrollment, Patient, Site, Task, User
from pathways.services.enrollment import care_team_add, enrollment_apply
from pathways.services.observations import ObservationInput, task_complete_with_values
from pathways.services.photos import PhotoInput, wound_photo_add
from pathways.services.sweeps import schedules_materialize_due, tasks_expire_missed
from pathways.services.tasks import task_claim, task_transition

DEMO_PASSWORD = "carepath-demo"  # noqa: S105 - synthetic demo accounts only; printed by seed_demo

SITES = [
    ("phx", "Desert Kidney Center (demo)", "America/Phoenix"),
    ("chi", "Lakeshore Renal Institute (demo)", "America/Chicago"),
    ("nyc", "Hudson Dialysis Hospital (demo)", "America/New_York"),
]

# Synthetic, obviously fictional names; no real patient data anywhere.
GIVEN = [
    "Ada",
    "Bram",
    "Cleo",
    "Dov",
    "Esme",
    "Fenn",
    "Gala",
    "Hugo",
    "Iris",
    "Jory",
    "Kaia",
    "Lior",
    "Mira",
    "Nico",
    "Opal",
    "Pax",
    "Quin",
    "Rhea",
    "Sol",
    "Tova",
]
FAMILY = ["Testpatient", "Demoson", "Samplewood", "Mockford", "Fictivo"]
DAY_SETS = [[0, 2, 4], [1, 3, 5]]
# Hemodialysis most often; a peritoneal-dialysis patient, a kidney transplant recipient (immunosuppression
# review) and a patient not on dialysis (non-uremic: the underlying-cause workup) too (issue 16).
MODALITIES = [DialysisModality.HEMODIALYSIS] * 3 + [
    DialysisModality.PERITONEAL,
    DialysisModality.TRANSPLANT,
    DialysisModality.NONE,
]
MEDICATION_SETS = [["warfarin", "calcium_binder"], [], ["vitamin_d"], ["iron", "corticosteroid"], ["warfarin"]]
RISK_SETS = [
    ["diabetes", "obesity"],
    ["long_term_dialysis"],
    ["hyperparathyroidism", "low_albumin"],
    [],
    ["clotting_abnormality"],
]
SESSION_TIMES = [dt.time(6, 30), dt.time(11, 0), dt.time(15, 30)]
# How the demo's past was worked, per task (chosen from the task id, so a seed is reproducible): hours before
# (negative) or after the due time at which it was completed, or None for work left open. About two thirds on
# time, a fifth late, one in eight still open: the dashboard shows a spread, and the first live sweeps escalate
# only what was really left, not every task of three weeks.
FATES: list[float | None] = [
    -6,
    -3,
    -2,
    -1,
    -1,
    -0.5,
    -0.25,
    -4,
    -2,
    -1,
    -8,
    -1.5,
    -3,
    1,
    3,
    6,
    20,
    30,
    None,
    None,
    None,
    None,
]
REPLAY_STEP = dt.timedelta(hours=6)
# The photographed demo patients: at this site, enrolled at least this long ago (two or three weekly assessments).
PHOTO_SITE = "chi"
PHOTO_MIN_AGE = dt.timedelta(days=14)
# Two lesions per patient: label, body site, length and width at the first assessment (cm); each week the
# wound shrinks by a tenth and the BWAT-CUA score falls by 3 from 31 (8-40, higher is worse).
LESIONS = [
    ("L1 left thigh", "left thigh", Decimal("4.2"), Decimal("3.0")),
    ("L2 right calf", "right calf", Decimal("2.6"), Decimal("1.8")),
]


@dataclass(frozen=True)
class DemoLogin:
    username: str
    roles: list[str]
    sites: list[str]


def _user(username: str, roles: list[str], sites: list[Site]) -> tuple[User, bool]:
    user, created = User.objects.get_or_create(
        username=username,
        defaults={
            "email": f"{username}@example.org",
            "roles": roles,
            "is_staff": Role.ADMIN in roles,
            "is_superuser": Role.ADMIN in roles,
            "first_name": username.split(".")[0].title(),
        },
    )
    if created:
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])
        user.sites.set(sites)
    return user, created


@transaction.atomic
def demo_seed(
    *, patients_per_site: int = 7, progress: Callable[[str], None] = lambda _: None, now: dt.datetime | None = None
) -> list[DemoLogin]:
    """Create (or complete) the demo data set; running it again changes nothing that already exists."""
    now = now or timezone.now()
    sites = []
    for code, name, tz in SITES:
        site, _ = Site.objects.get_or_create(code=code, defaults={"name": name, "timezone": tz})
        sites.append(site)
    progress(f"sites: {', '.join(s.code for s in sites)}")

    logins: list[DemoLogin] = []
    coordinators = {}
    for site in sites:
        coordinators[site.code], _ = _user(f"coordinator.{site.code}", [Role.COORDINATOR.value], [site])
        logins.append(DemoLogin(f"coordinator.{site.code}", [Role.COORDINATOR.value], [site.code]))
    for username, roles in (("auditor", [Role.AUDITOR.value]), ("admin", [Role.ADMIN.value])):
        _user(username, roles, sites)
        logins.append(DemoLogin(username, roles, [s.code for s in sites]))
    specialists = {}
    for role in sorted(SPECIALIST_ROLES):
        username = role.replace("_", "-")
        specialists[role], _ = _user(username, [role.value], sites)
        logins.append(DemoLogin(username, [role.value], [s.code for s in sites]))
    progress(f"users: {len(logins)} (one per role, a coordinator per site)")

    index = 0
    enrolled: dict[Enrollment, User] = {}  # new enrollments, and the coordinator who works coordinator tasks
    for site in sites:
        for n in range(patients_per_site):
            modality = MODALITIES[index % len(MODALITIES)]
            on_hd = modality == DialysisModality.HEMODIALYSIS
            patient, created = Patient.objects.get_or_create(
                site=site,
                mrn=f"DEMO-{site.code.upper()}-{n + 1:04d}",
                defaults={
                    "given_name": GIVEN[index % len(GIVEN)],
                    "family_name": FAMILY[index % len(FAMILY)],
                    "birth_date": dt.date(1940 + (index * 3) % 45, 1 + index % 12, 1 + index % 28),
                    "sex": [Sex.FEMALE, Sex.MALE][index % 2],
                    "dialysis_modality": modality,
                    "dialysis_days": DAY_SETS[index % 2] if on_hd else [],
                    "dialysis_session_time": SESSION_TIMES[index % 3] if on_hd else None,
                    "risk_medications": MEDICATION_SETS[index % len(MEDICATION_SETS)],
                    "risk_factors": RISK_SETS[index % len(RISK_SETS)]
                    + ([RiskFactor.FEMALE_SEX] if index % 2 == 0 else []),
                },
            )
            index += 1
            if Enrollment.objects.filter(
                patient=patient, pathway_slug="calciphylaxis", status__in=LIVE_ENROLLMENT_STATUSES
            ).exists():
                continue
            coordinator = coordinators[site.code]
            # Stagger enrollment so the demo shows work of different ages (up to three weeks old).
            enrolled_at = now - dt.timedelta(days=(n * 3) % 21, hours=n)
            enrollment = enrollment_apply(
                patient_id=patient.pk,
                pathway_slug="calciphylaxis",
                actor=coordinator,
                coordinator=coordinator,
                # Each site's newest patient is a suspected case: the workup runs, the diagnosis is pending.
                diagnosis_status=(DiagnosisStatus.PROVISIONAL if n == 0 else DiagnosisStatus.CONFIRMED),
                now=enrolled_at,
            )
            for role, user in specialists.items():
                care_team_add(enrollment_id=enrollment.pk, user=user, role=role, actor=coordinator, now=enrolled_at)
            enrolled[enrollment] = coordinator
            # Ids only: this output lands in the log of `manage.py up` (issue 12, section 7).
            progress(f"  enrolled patient {patient.pk} ({'new' if created else 'existing'}, {modality})")
    if enrolled:
        by_role = {role.value: user for role, user in specialists.items()}
        photographed = {
            e.pk for e in enrolled if e.patient.site.code == PHOTO_SITE and e.enrolled_at <= now - PHOTO_MIN_AGE
        }
        worked = _replay_history(enrolled, specialists=by_role, now=now, photographed=photographed)
        progress(f"history: {worked} tasks worked between enrolment and now (some on time, some late, some open)")
    progress(
        f"patients: {Patient.objects.count()}, live enrollments: "
        f"{Enrollment.objects.filter(status__in=LIVE_ENROLLMENT_STATUSES).count()}"
    )
    return logins


def _replay_history(
    enrollments: dict[Enrollment, User],
    *,
    specialists: dict[str, User],
    now: dt.datetime,
    photographed: frozenset[int] | set[int] = frozenset(),
) -> int:
    """Work the new enrollments' past as their teams would have, through the real services, in time order: in
    steps of REPLAY_STEP from the oldest enrolment to `now`, materialize what fell due (as beat would have) and
    claim, start and complete each task at the time its FATES entry gives (session work whose window ended first is
    closed as missed by the expiry sweep, as beat would have). Later occurrences of "after
    completion" schedules move as they would have, prerequisites release, the first-action table fills.
    The wound assessments of the `photographed` enrollments are all done, each with its score, measurements
    and two lesions' photographs (_wound_assessment). Returns how many tasks were completed."""
    coordinator_of = {e.pk: coordinator for e, coordinator in enrollments.items()}
    ids = list(coordinator_of)
    start = min(e.enrolled_at for e in enrollments)
    grid, moment = set(), start
    while moment < now:
        moment = min(moment + REPLAY_STEP, now)
        grid.add(moment)
    # Beat sweeps every minute, so a sweep also runs right after each enrolment: its first day's work exists
    # before it falls due (not made afterwards, at the next step, as late or already-missed work).
    completed = 0
    for moment in sorted(grid | {e.enrolled_at for e in enrollments if e.enrolled_at < now}):
        schedules_materialize_due(now=moment)
        for task in Task.objects.filter(
            enrollment_id__in=ids, status=TaskStatus.REQUESTED, assignee__isnull=True
        ).select_related("template"):
            photos = (
                task.enrollment_id in photographed
                and task.template is not None
                and task.template.code == "wound-assessment"
            )
            fate = FATES[task.pk % len(FATES)]
            if fate is None and photos:
                fate = -1.0
            if fate is None:
                continue
            done = max(task.due_at + dt.timedelta(hours=fate), task.available_at + dt.timedelta(minutes=30))
            if done > moment:
                continue  # not yet: a later step
            if task.expires_at is not None and done > task.expires_at:
                continue  # the session ended first: the dose was missed (the expiry sweep below closes it)
            user = specialists.get(task.role) or coordinator_of[task.enrollment_id]
            try:
                with transaction.atomic():
                    task_claim(task_id=task.pk, actor=user, expected_version=None, now=done - dt.timedelta(minutes=20))
                    task_transition(
                        task_id=task.pk,
                        to_status=TaskStatus.IN_PROGRESS,
                        actor=user,
                        expected_version=None,
                        now=done - dt.timedelta(minutes=15),
                    )
                    if photos:
                        _wound_assessment(task, user, done)
                    else:
                        task_transition(
                            task_id=task.pk, to_status=TaskStatus.COMPLETED, actor=user, expected_version=None, now=done
                        )
                completed += 1
            except DomainError:
                continue  # e.g. waiting for a prerequisite: left open, as it would have been
        tasks_expire_missed(now=moment)
    return completed


def _wound_assessment(task: Task, nurse: User, done: dt.datetime) -> None:
    """Complete a demo wound assessment as the nurse would: BWAT-CUA and the first lesion's measurements as
    values, then a photograph of each lesion (LESIONS) with its own measurements."""
    week = max((done - task.enrollment.enrolled_at).days // 7, 0)
    shrink = Decimal(1) - Decimal("0.1") * week
    first_length, first_width = LESIONS[0][2] * shrink, LESIONS[0][3] * shrink
    task_complete_with_values(
        task_id=task.pk,
        actor=nurse,
        expected_version=None,
        values=[
            ObservationInput("bwat_cua", str(31 - 3 * week), "score"),
            ObservationInput("wound_length", f"{first_length:.1f}", "cm"),
            ObservationInput("wound_width", f"{first_width:.1f}", "cm"),
        ],
        outcome="BWAT-CUA scored, lesions measured and photographed",
        now=done,
    )
    for index, (label, site, length, width) in enumerate(LESIONS):
        wound_photo_add(
            task_id=task.pk,
            photo=PhotoInput(
                data=synthetic_wound_photo(index=index, week=week, length_cm=length * shrink, width_cm=width * shrink),
                filename=f"lesion-{index + 1}.jpg",
                lesion=label,
                body_site=site,
                taken_at=done - dt.timedelta(minutes=5 - index),
                length_cm=f"{length * shrink:.1f}",
                width_cm=f"{width * shrink:.1f}",
                note="Synthetic demo image",
            ),
            actor=nurse,
            now=done,
        )


def synthetic_wound_photo(*, index: int, week: int, length_cm: Decimal, width_cm: Decimal) -> bytes:
    """A drawn stand-in for a wound photograph (640 x 480 JPEG): skin, a dark eschar of the lesion's size at
    40 px/cm with a red rim that fades as the weeks go by, and the words "SYNTHETIC DEMO". No real photo."""
    image = Image.new("RGB", (640, 480), (222 - 20 * index, 178 - 15 * index, 146 - 10 * index))
    draw = ImageDraw.Draw(image)
    half_w, half_h = float(length_cm) * 20, float(width_cm) * 20
    rim = max(60 - 15 * week, 10)
    draw.ellipse(
        (320 - half_w - rim / 3, 240 - half_h - rim / 3, 320 + half_w + rim / 3, 240 + half_h + rim / 3),
        fill=(200, 80 + rim // 3, 80),
    )
    draw.ellipse((320 - half_w, 240 - half_h, 320 + half_w, 240 + half_h), fill=(50 + 10 * week, 30, 25))
    draw.text((12, 12), f"SYNTHETIC DEMO - lesion {index + 1}, week {week + 1}", fill=(20, 20, 20))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()
