"""Reading wound photographs: one photo for a viewer, a photo's file, and the per-lesion timeline of an
enrollment (each week's photo beside that week's BWAT-CUA score and wound area).

Scoping is access.scope_wound_photos: a photo out of the viewer's scope (another site, off the care team) is
simply not found. The timeline is built in two statements whatever the number of photos (a query-count test
guards it)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.files.storage import storages

from pathways.choices import ObservationCode
from pathways.models import Enrollment, Observation, User, WoundPhoto
from pathways.selectors.access import scope_wound_photos

STORAGE_ALIAS = "wound_photos"
VARIANTS = ("image", "thumbnail")
_TIMELINE_CODES = (ObservationCode.BWAT_CUA, ObservationCode.WOUND_LENGTH, ObservationCode.WOUND_WIDTH)


def wound_photo_for_user(*, user: User, photo_id: int) -> WoundPhoto | None:
    """The photo if the user may see it (and it is not deleted), with its task and enrollment; else None."""
    return scope_wound_photos(user).select_related("enrollment", "task").filter(pk=photo_id).first()


def wound_photo_chunks(photo: WoundPhoto, variant: str, *, chunk_size: int = 64 * 1024) -> Iterator[bytes]:
    """The stored bytes of `variant` ("image" or "thumbnail") in chunks, read from the wound_photos storage."""
    name = photo.image_name if variant == "image" else photo.thumbnail_name
    with storages[STORAGE_ALIAS].open(name, "rb") as handle:
        while chunk := handle.read(chunk_size):
            yield chunk


@dataclass
class TimelineEntry:
    """One photo in a lesion's timeline: the week since enrolment (1 = the first seven days), the BWAT-CUA
    score recorded with the same assessment task (8-40; None if not recorded) and the wound area in cm2
    (length x width: the photo's own measurements, else the assessment's; None without both)."""

    photo: WoundPhoto
    week: int
    bwat_cua: Decimal | None
    area_cm2: Decimal | None


@dataclass
class LesionTimeline:
    """A lesion's photos, oldest first."""

    lesion: str
    body_site: str
    entries: list[TimelineEntry] = field(default_factory=list)


def lesion_timelines(*, user: User, enrollment: Enrollment) -> list[LesionTimeline]:
    """The enrollment's photos the user may see, grouped by lesion label (sorted), each lesion oldest first.

    Area is the rectangle method, length x width (cm2), which over-estimates an ellipse-shaped wound by
    about a quarter but is what bedside measurement gives (Keast et al., MEASURE, Int Wound J 2004)."""
    photos = list(
        scope_wound_photos(user)
        .filter(enrollment=enrollment)
        .only(
            "pk",
            "enrollment_id",
            "task_id",
            "lesion",
            "body_site",
            "taken_at",
            "length_cm",
            "width_cm",
            "depth_cm",
            "note",
            "width_px",
            "height_px",
        )
        .order_by("lesion", "taken_at", "pk")
    )
    values: dict[tuple[int, str], Decimal] = {}
    if photos:
        rows = (
            Observation.objects.filter(
                enrollment=enrollment, task_id__in={p.task_id for p in photos}, code__in=_TIMELINE_CODES
            )
            .order_by("effective_at", "pk")
            .values_list("task_id", "code", "value")
        )
        for task_id, code, value in rows:
            values[(task_id, code)] = value  # the latest per task and code wins
    timelines: dict[str, LesionTimeline] = {}
    for photo in photos:
        timeline = timelines.setdefault(photo.lesion, LesionTimeline(lesion=photo.lesion, body_site=photo.body_site))
        length = photo.length_cm if photo.length_cm is not None else values.get((photo.task_id, "wound_length"))
        width = photo.width_cm if photo.width_cm is not None else values.get((photo.task_id, "wound_width"))
        area = (length * width).quantize(Decimal("0.01")) if length is not None and width is not None else None
        week = max((photo.taken_at - enrollment.enrolled_at).days // 7 + 1, 1)
        timeline.entries.append(
            TimelineEntry(photo=photo, week=week, bwat_cua=values.get((photo.task_id, "bwat_cua")), area_cm2=area)
        )
    return list(timelines.values())
