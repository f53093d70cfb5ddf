"""The patient page (`patients/<id>/`): the dashboard's board made actionable, for everyone on the team.

The prongs side by side with the same row actions as My work, active flags, the latest labs and scores with
small server-rendered SVG trend lines, medication changes and the enrollment's timeline. Out of scope: 404."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from pathways.choices import DerivedCode, ObservationCode, RiskMedication, Therapy
from pathways.domain.units import canonical_unit
from pathways.middleware import audit_note
from pathways.models import Enrollment, Observation, User
from pathways.selectors.access import scope_patients
from pathways.selectors.photos import lesion_timelines
from pathways.selectors.workspace import CHART_CODES, patient_page
from pathways.web.photos import photo_alt
from pathways.web.work import local_time, staff_user, task_rows

CODE_LABELS = {**dict(ObservationCode.choices), **dict(DerivedCode.choices)}


def _label(code: str) -> str:
    return CODE_LABELS.get(code, code).split(" (")[0]


def _number(value: Decimal) -> str:
    text = f"{value.normalize():f}"
    return text


def sparkline(values: Sequence[Observation], *, title: str, chart_id: str) -> SafeString:
    """A small trend line of observation values (oldest to newest), its last point marked; an SVG with a
    text alternative naming the newest value, the range and the count."""
    width, height, pad = 200, 48, 5
    numbers = [float(o.value) for o in values]
    low, high = min(numbers), max(numbers)
    span = (high - low) or 1.0
    step = (width - 2 * pad) / max(len(numbers) - 1, 1)
    points = [
        (pad + index * step, pad + (height - 2 * pad) * (1 - (number - low) / span))
        for index, number in enumerate(numbers)
    ]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    last_x, last_y = points[-1]
    summary = (
        f"{title}: {len(numbers)} value{'s' if len(numbers) != 1 else ''}, "
        f"from {_number(values[0].value)} to {_number(values[-1].value)} {values[-1].unit}, "
        f"range {low:g}-{high:g}"
    )
    return mark_safe(  # noqa: S308 - every interpolated text is escaped; the rest are numbers
        f'<svg xmlns="http://www.w3.org/2000/svg" class="spark" id="{escape(chart_id)}" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" aria-label="{escape(summary)}">'
        f"<title>{escape(summary)}</title>"
        f'<polyline class="series" fill="none" points="{path}"/>'
        f'<circle class="point" cx="{last_x:.1f}" cy="{last_y:.1f}" r="3"/></svg>'
    )


THERAPY_LABELS = dict(Therapy.choices)
RISK_MEDICATION_LABELS = dict(RiskMedication.choices)


def _lesions(user: User, enrollment: Enrollment, zone: str) -> list[dict[str, Any]]:
    """Each lesion's photos for the timeline: thumbnails only (the full image opens on demand), week, date,
    that assessment's BWAT-CUA score and area, and a text alternative naming the lesion and the date."""
    edge = int(settings.CAREPATH["PHOTO_THUMBNAIL_EDGE"])
    lesions = []
    for timeline in lesion_timelines(user=user, enrollment=enrollment):
        entries = []
        for entry in timeline.entries:
            photo = entry.photo
            scale = edge / max(photo.width_px, photo.height_px, 1)
            entries.append(
                {
                    "photo": photo,
                    "week": entry.week,
                    "bwat_cua": _number(entry.bwat_cua) if entry.bwat_cua is not None else None,
                    "area_cm2": _number(entry.area_cm2) if entry.area_cm2 is not None else None,
                    "taken_local": local_time(photo.taken_at, zone),
                    "alt": photo_alt(photo, zone),
                    "thumbnail_url": reverse("workspace:photo-file", args=[photo.pk, "thumbnail"]),
                    "image_url": reverse("workspace:photo-file", args=[photo.pk, "image"]),
                    "thumb_width": max(round(photo.width_px * min(scale, 1)), 1),
                    "thumb_height": max(round(photo.height_px * min(scale, 1)), 1),
                }
            )
        lesions.append({"label": timeline.lesion, "body_site": timeline.body_site, "entries": entries})
    return lesions


@login_required
def patient(request: HttpRequest, patient_id: int) -> HttpResponse:
    """The patient page: board with actions, flags, labs with trends, medication changes, timeline."""
    user = staff_user(request)
    now = timezone.now()
    data = patient_page(user=user, patient_id=patient_id, now=now)
    if data is None:
        raise Http404("no such patient")
    zone = data.patient.site.timezone
    all_tasks = [t for _, _, open_tasks, closed in data.columns for t in (*open_tasks, *closed)]
    rows = {row["task"].pk: row for row in task_rows(user, all_tasks, now)}
    columns = [
        (label, code, [rows[t.pk] for t in open_tasks], [rows[t.pk] for t in closed])
        for label, code, open_tasks, closed in data.columns
    ]
    labs = []
    for code in CHART_CODES:
        values = data.observations.get(code, [])
        latest = values[-1] if values else None
        labs.append(
            {
                "code": code,
                "label": _label(code),
                "unit": canonical_unit(code),
                "latest": _number(latest.value) if latest else "",
                "latest_at": local_time(latest.effective_at, zone) if latest else "",
                "chart": sparkline(values, title=_label(code), chart_id=f"trend-{code}") if values else "",
            }
        )
    timeline = [
        {"at": local_time(at, zone), "kind": kind, "source": source, "event": event}
        for at, kind, source, event in data.timeline
    ]
    lesions = _lesions(user, data.enrollment, zone) if data.enrollment else []
    audit_note(
        request,
        entity_type="patient",
        entity_id=str(patient_id),
        patient_id=patient_id,
        subtype="workspace patient page",
        entity_ids=[str(data.enrollment.pk)] if data.enrollment else [],
    )
    return render(
        request,
        "pathways/work/patient.html",
        {
            "patient": data.patient,
            "enrollment": data.enrollment,
            "columns": columns,
            "flags": data.flags,
            "labs": labs,
            "therapies": [THERAPY_LABELS.get(t, t) for t in data.patient.current_therapies or []],
            "risk_medications": [RISK_MEDICATION_LABELS.get(m, m) for m in data.patient.risk_medications or []],
            "medication_changes": [
                {"change": c, "at": local_time(c.effective_at, zone)} for c in data.medication_changes
            ],
            "timeline": timeline,
            "lesions": lesions,
            "zone": zone,
            "enrolled_local": local_time(data.enrollment.enrolled_at, zone) if data.enrollment else "",
        },
    )


@login_required
def board_redirect(request: HttpRequest, patient_id: int) -> HttpResponse:
    """The dashboard's old board URL: to the patient page (out of scope stays a 404 here)."""
    user = staff_user(request)
    if not scope_patients(user).filter(pk=patient_id).exists():
        raise Http404("no such patient")
    return redirect("workspace:patient", patient_id=patient_id)
