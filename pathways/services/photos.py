"""Wound photographs: attaching them to a wound assessment, soft-deleting them, purging their files.

An upload is checked and re-encoded (pathways.domain.images) before anything is written; then the image and
its thumbnail go to the `wound_photos` storage and the row to the database. If the row cannot be written the
files are removed again, so a refused upload leaves nothing behind. Reads (the timeline, the files) are in
pathways.selectors.photos; who may see and attach is decided in pathways.selectors.access.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages
from django.db import transaction
from django.utils import timezone

from pathways.choices import AuditAction, AuditOutcome, ObservationCode, TaskStatus
from pathways.domain import instants, units
from pathways.domain.images import CleanImage, ImageLimits, image_clean
from pathways.errors import IllegalTransition, InvalidInput, NotFound, NotPermitted
from pathways.models import Assessment, Task, User, WoundPhoto
from pathways.selectors.access import (
    can_manage_enrollment,
    can_photograph_task,
    scope_enrollments,
    scope_wound_photos,
)
from pathways.services.audit import audit_record
from pathways.services.observations import enrollment_for_clinical_write

logger = logging.getLogger(__name__)

STORAGE_ALIAS = "wound_photos"
# The task templates whose tasks take photographs (calciphylaxis.yaml: "photograph each lesion").
PHOTO_TEMPLATES = frozenset({"wound-assessment"})
# Photographs attach to an assessment being done or just done; not to one cancelled, failed or in error.
PHOTO_TASK_STATUSES = frozenset(
    {TaskStatus.REQUESTED, TaskStatus.ACCEPTED, TaskStatus.IN_PROGRESS, TaskStatus.ON_HOLD, TaskStatus.COMPLETED}
)
MAX_LESION = 64
MAX_BODY_SITE = 200
MAX_NOTE = 2000
MAX_REASON = 500


def photo_storage() -> Storage:
    """The storage of wound photographs (settings.STORAGES["wound_photos"]: var/photos/ or S3-compatible)."""
    return storages[STORAGE_ALIAS]


def image_limits() -> ImageLimits:
    """The upload limits from settings.CAREPATH (README, "Wound photographs")."""
    conf = settings.CAREPATH
    return ImageLimits(
        max_bytes=int(conf["PHOTO_MAX_BYTES"]),
        max_pixels=int(conf["PHOTO_MAX_PIXELS"]),
        max_edge=int(conf["PHOTO_MAX_EDGE"]),
        thumbnail_edge=int(conf["PHOTO_THUMBNAIL_EDGE"]),
    )


@dataclass(frozen=True)
class PhotoInput:
    """One photograph as uploaded: the file's bytes and name, the lesion's label and body site, and optional
    time taken (default: now), measurements (cm, as text or numbers) and note."""

    data: bytes
    filename: str
    lesion: str
    body_site: str
    taken_at: dt.datetime | None = None
    length_cm: Any = None
    width_cm: Any = None
    depth_cm: Any = None
    note: str = ""


def _text(value: str, *, field: str, limit: int, required: bool) -> str:
    text = " ".join((value or "").split())
    if required and not text:
        raise InvalidInput(f"{field} is required", fields={field: ["required"]})
    if len(text) > limit:
        raise InvalidInput(f"{field} is longer than {limit} characters", fields={field: [f"at most {limit}"]})
    return text


def _measurement(value: Any, *, code: str, field: str) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return units.normalize(code, value, "cm").value
    except InvalidInput as exc:
        raise InvalidInput(f"{field}: {exc.message}", fields={field: [exc.message]}) from exc


def _photo_task(actor: User, task_id: int) -> Task:
    """The task to attach to: visible to the actor (else 404), photographable by them (else 403), a wound
    assessment (else 400) in a status that takes photographs (else 409)."""
    tasks = Task.objects.select_related("enrollment__patient", "template")
    task = tasks.filter(enrollment__in=scope_enrollments(actor), pk=task_id).first()
    if task is None:
        raise NotFound(f"task {task_id} not found")
    if not can_photograph_task(actor, task):
        raise NotPermitted("only whoever may complete this assessment can attach photographs to it")
    if task.template is None or task.template.code not in PHOTO_TEMPLATES:
        raise InvalidInput(
            "this task takes no photographs (only wound assessments do)", fields={"task": ["not a wound assessment"]}
        )
    if task.status not in PHOTO_TASK_STATUSES:
        raise IllegalTransition(f"the task is {task.status}; photographs can no longer be attached")
    return task


def _store(storage: Storage, enrollment_id: int, clean: CleanImage) -> tuple[str, str]:
    """Save the image and thumbnail under random names that carry no patient detail: (image, thumbnail)."""
    stem = f"{enrollment_id}/{uuid.uuid4().hex}"
    image_name = storage.save(f"{stem}{clean.extension}", ContentFile(clean.data))
    try:
        thumbnail_name = storage.save(f"{stem}-thumb.jpg", ContentFile(clean.thumbnail))
    except Exception:
        storage.delete(image_name)
        raise
    return image_name, thumbnail_name


def wound_photo_add(*, task_id: int, photo: PhotoInput, actor: User, now: dt.datetime | None = None) -> WoundPhoto:
    """Attach one photograph to a wound-assessment task: check, re-encode, store, record.

    Raises NotFound (404: task out of scope), NotPermitted (403: may not complete it), InvalidInput (400: bad
    field, empty or undecodable file, not a wound assessment), UnsupportedMediaType (415), TooLarge (413),
    IllegalTransition (409: task cancelled/failed, enrollment closed). Nothing is stored unless all passes.
    """
    now = now or timezone.now()
    task = _photo_task(actor, task_id)
    lesion = _text(photo.lesion, field="lesion", limit=MAX_LESION, required=True)
    body_site = _text(photo.body_site, field="body_site", limit=MAX_BODY_SITE, required=True)
    note = (photo.note or "").strip()
    if len(note) > MAX_NOTE:
        raise InvalidInput(f"note is longer than {MAX_NOTE} characters", fields={"note": [f"at most {MAX_NOTE}"]})
    taken_at = photo.taken_at or now
    if timezone.is_naive(taken_at):
        raise InvalidInput("taken_at needs a timezone", fields={"taken_at": ["give a UTC offset or Z"]})
    instants.check_clinical_time(taken_at, now=now, field_name="taken_at")
    length = _measurement(photo.length_cm, code=ObservationCode.WOUND_LENGTH, field="length_cm")
    width = _measurement(photo.width_cm, code=ObservationCode.WOUND_WIDTH, field="width_cm")
    depth = _measurement(photo.depth_cm, code=ObservationCode.WOUND_DEPTH, field="depth_cm")
    # The slow part (decode, re-encode) runs before any lock is taken.
    clean = image_clean(photo.data, filename=photo.filename or "", limits=image_limits())
    storage = photo_storage()
    with transaction.atomic():
        enrollment = enrollment_for_clinical_write(actor=None, enrollment_id=task.enrollment_id)
        # The status checked above, again under the lock: a cancellation in between must win.
        status = Task.objects.select_for_update().values_list("status", flat=True).get(pk=task.pk)
        if status not in PHOTO_TASK_STATUSES:
            raise IllegalTransition(f"the task is {status}; photographs can no longer be attached")
        image_name, thumbnail_name = _store(storage, enrollment.pk, clean)
        try:
            with transaction.atomic():
                row = WoundPhoto.objects.create(
                    enrollment=enrollment,
                    task=task,
                    assessment=Assessment.objects.filter(task=task).order_by("-pk").first(),
                    lesion=lesion,
                    body_site=body_site,
                    taken_at=taken_at,
                    taken_by=actor,
                    recorded_at=now,
                    length_cm=length,
                    width_cm=width,
                    depth_cm=depth,
                    note=note,
                    detected_type=clean.detected_type,
                    content_type=clean.content_type,
                    width_px=clean.width,
                    height_px=clean.height,
                    size_bytes=len(clean.data),
                    sha256=clean.sha256,
                    image_name=image_name,
                    thumbnail_name=thumbnail_name,
                )
        except Exception:
            storage.delete(image_name)
            storage.delete(thumbnail_name)
            raise
    logger.info(
        "wound photo stored: photo=%s enrollment=%s task=%s bytes=%s", row.pk, enrollment.pk, task.pk, row.size_bytes
    )
    return row


@transaction.atomic
def wound_photo_delete(*, photo_id: int, actor: User | None, reason: str, now: dt.datetime | None = None) -> WoundPhoto:
    """Soft-delete a photograph with a reason (who may attach to its task, coordinators at its site, admins).

    The row stays, hidden from every view; its files stay until `wound_photos_purge` after the retention
    period. Raises NotFound (404), NotPermitted (403), InvalidInput (400: no reason)."""
    now = now or timezone.now()
    photos = WoundPhoto.objects.select_for_update(of=("self",)).select_related("task__enrollment__patient")
    if actor is not None:
        photos = photos.filter(pk__in=scope_wound_photos(actor).values("pk"))
    photo = photos.filter(pk=photo_id, deleted_at__isnull=True).first()
    if photo is None:
        raise NotFound(f"photo {photo_id} not found")
    if not (can_photograph_task(actor, photo.task) or can_manage_enrollment(actor, photo.task.enrollment)):
        raise NotPermitted("only the assessment's team members, coordinators and admins can delete photographs")
    reason = _text(reason, field="reason", limit=MAX_REASON, required=True)
    photo.deleted_at = now
    photo.deleted_by = actor
    photo.delete_reason = reason
    photo.save(update_fields=["deleted_at", "deleted_by", "delete_reason"])
    logger.info("wound photo deleted: photo=%s enrollment=%s", photo.pk, photo.enrollment_id)
    return photo


@dataclass
class PurgeReport:
    """What a purge did: the photos whose files were removed, and those whose removal failed (kept for next time)."""

    purged: list[int]
    failed: list[int]


def wound_photos_purge(*, now: dt.datetime | None = None, retention_days: int | None = None) -> PurgeReport:
    """Remove the files of photos soft-deleted more than `retention_days` (CAREPATH["PHOTO_RETENTION_DAYS"])
    ago; the rows stay (purged_at set, names cleared) with an AuditEvent per photo. Safe to re-run."""
    now = now or timezone.now()
    days = settings.CAREPATH["PHOTO_RETENTION_DAYS"] if retention_days is None else retention_days
    cutoff = now - dt.timedelta(days=int(days))
    storage = photo_storage()
    report = PurgeReport(purged=[], failed=[])
    due = WoundPhoto.objects.filter(deleted_at__lte=cutoff, purged_at__isnull=True).values_list("pk", flat=True)
    for photo_id in list(due):
        with transaction.atomic():
            photo = (
                WoundPhoto.objects.select_for_update(skip_locked=True)
                .select_related("enrollment")
                .filter(pk=photo_id, purged_at__isnull=True)
                .first()
            )
            if photo is None:
                continue
            try:
                for name in (photo.image_name, photo.thumbnail_name):
                    if name:
                        storage.delete(name)
            except Exception:
                logger.exception("wound photo purge failed: photo=%s", photo.pk)
                report.failed.append(photo.pk)
                continue
            photo.purged_at = now
            photo.image_name = ""
            photo.thumbnail_name = ""
            photo.save(update_fields=["purged_at", "image_name", "thumbnail_name"])
            audit_record(
                action=AuditAction.DELETE,
                subtype="wound photo purge",
                outcome=AuditOutcome.SUCCESS,
                actor=None,
                entity_type="woundphoto",
                entity_id=str(photo.pk),
                patient_id=photo.enrollment.patient_id,
            )
            report.purged.append(photo.pk)
    logger.info("wound photos purged: %s (failed: %s)", report.purged, report.failed)
    return report
