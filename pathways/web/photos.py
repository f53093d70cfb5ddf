"""Wound photographs in the workspace: attaching a photo to a wound-assessment task (a multipart form that calls
the API's service), and the thumbnail and full image behind the patient page's lesion timeline.

The files are served only by these views and the API's, from access.scope_wound_photos: out of scope is a
404, and each request is an audit event naming the photo and its patient (docs/security.md)."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from pathways.choices import AuditAction
from pathways.errors import DomainError, NotFound, NotPermitted
from pathways.middleware import audit_note
from pathways.models import WoundPhoto
from pathways.photo_files import file_response, read_upload
from pathways.selectors.access import can_photograph_task, scope_wound_photos
from pathways.selectors.photos import VARIANTS, wound_photo_for_user
from pathways.selectors.workspace import task_for_action
from pathways.services.photos import (
    PHOTO_TASK_STATUSES,
    PHOTO_TEMPLATES,
    PhotoInput,
    wound_photo_add,
    wound_photo_delete,
)
from pathways.web.work import local_time, staff_user


class WoundPhotoForm(forms.Form):
    """One photograph of one lesion: the file, the lesion's label and body site, optional measurements (cm)
    and note. The service checks everything again (type from the content, limits, bounds)."""

    image = forms.FileField(
        label="Photograph (JPEG or PNG)",
        allow_empty_file=True,
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png"}),
    )
    lesion = forms.CharField(
        max_length=64,
        label="Lesion label",
        help_text='The same label at every assessment, e.g. "L1 left thigh".',
        widget=forms.TextInput(attrs={"list": "known-lesions", "autocomplete": "off"}),
    )
    body_site = forms.CharField(max_length=200, label="Body site")
    length_cm = forms.CharField(required=False, max_length=32, label="Length (cm, optional)")
    width_cm = forms.CharField(required=False, max_length=32, label="Width (cm, optional)")
    depth_cm = forms.CharField(required=False, max_length=32, label="Depth (cm, optional)")
    note = forms.CharField(
        required=False, max_length=2000, label="Note (optional)", widget=forms.Textarea(attrs={"rows": 2})
    )


@login_required
def task_photos(request: HttpRequest, task_id: int) -> HttpResponse:
    """GET: the form to photograph a lesion for a wound-assessment task, with the photos attached so far.
    POST (multipart): attach one photo (wound_photo_add, as POST /api/v1/wound-photos/), then back here (303)
    to add the next lesion. Refused files: the form again with the reason (400/413/415); nothing is stored."""
    user = staff_user(request)
    task = task_for_action(user=user, task_id=task_id)
    if task is None or task.template is None or task.template.code not in PHOTO_TEMPLATES:
        raise Http404("no such wound assessment")
    audit_note(
        request,
        entity_type="task",
        entity_id=str(task.pk),
        patient_id=task.enrollment.patient_id,
        subtype="workspace wound photos",
    )
    if not can_photograph_task(user, task) or task.status not in PHOTO_TASK_STATUSES:
        raise PermissionDenied("you may not attach photographs to this task")
    zone = task.enrollment.patient.site.timezone
    attached = list(scope_wound_photos(user).filter(task=task).order_by("lesion", "taken_at", "pk"))
    known = sorted(
        set(scope_wound_photos(user).filter(enrollment_id=task.enrollment_id).values_list("lesion", flat=True))
    )
    status = 200
    form = WoundPhotoForm()
    if request.method == "POST":
        form = WoundPhotoForm(request.POST, request.FILES)
        if form.is_valid():
            data = form.cleaned_data
            upload = data["image"]
            try:
                photo = wound_photo_add(
                    task_id=task.pk,
                    photo=PhotoInput(
                        data=read_upload(upload),
                        filename=upload.name or "",
                        lesion=data["lesion"],
                        body_site=data["body_site"],
                        length_cm=data["length_cm"],
                        width_cm=data["width_cm"],
                        depth_cm=data["depth_cm"],
                        note=data["note"],
                    ),
                    actor=user,
                )
            except NotPermitted as exc:
                raise PermissionDenied(exc.message) from exc
            except NotFound as exc:
                raise Http404(exc.message) from exc
            except DomainError as exc:
                form.add_error(None, exc.message)
                status = exc.http_status
            else:
                audit_note(request, entity_type="woundphoto", entity_id=str(photo.pk), action=AuditAction.CREATE)
                messages.success(request, f"Photograph of {photo.lesion} saved.")
                return HttpResponseRedirect(reverse("workspace:task-photos", args=[task.pk]), status=303)
        else:
            status = 400
    context: dict[str, Any] = {
        "task": task,
        "form": form,
        "known_lesions": known,
        "attached": [_card(photo, zone) for photo in attached],
        "patient": task.enrollment.patient,
    }
    return render(request, "pathways/work/task_photos.html", context, status=status)


def photo_alt(photo: WoundPhoto, zone: str) -> str:
    """The text alternative of a photo: the lesion and the local date it was taken."""
    return f"Wound photograph of lesion {photo.lesion}, {photo.taken_at.astimezone(ZoneInfo(zone)):%Y-%m-%d}"


def _card(photo: WoundPhoto, zone: str) -> dict[str, Any]:
    return {
        "photo": photo,
        "taken_local": local_time(photo.taken_at, zone),
        "thumbnail_url": reverse("workspace:photo-file", args=[photo.pk, "thumbnail"]),
        "image_url": reverse("workspace:photo-file", args=[photo.pk, "image"]),
        "delete_url": reverse("workspace:photo-delete", args=[photo.pk]),
        "alt": photo_alt(photo, zone),
    }


@login_required
@require_POST
def photo_delete(request: HttpRequest, photo_id: int) -> HttpResponse:
    """Soft-delete a photo with a reason (wound_photo_delete, as POST /api/v1/wound-photos/<id>/delete/), then
    back to its task's photos (303). No reason: 400 with the page again; out of scope: 404."""
    user = staff_user(request)
    photo = wound_photo_for_user(user=user, photo_id=photo_id)
    if photo is None:
        raise Http404("no such photograph")
    audit_note(
        request,
        entity_type="woundphoto",
        entity_id=str(photo.pk),
        patient_id=photo.enrollment.patient_id,
        subtype="workspace wound photo delete",
        action=AuditAction.DELETE,
    )
    try:
        wound_photo_delete(photo_id=photo.pk, actor=user, reason=request.POST.get("reason", ""))
    except NotPermitted as exc:
        raise PermissionDenied(exc.message) from exc
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except DomainError as exc:
        messages.error(request, f"Not deleted: {exc.message}.")
        return HttpResponseRedirect(reverse("workspace:task-photos", args=[photo.task_id]), status=303)
    messages.success(request, f"Photograph of {photo.lesion} deleted.")
    return HttpResponseRedirect(reverse("workspace:task-photos", args=[photo.task_id]), status=303)


@login_required
def photo_file(request: HttpRequest, photo_id: int, variant: str) -> HttpResponse:
    """The thumbnail or the full image of a photo the user may see (else 404); every fetch is audited."""
    user = staff_user(request)
    if variant not in VARIANTS:
        raise Http404("no such file")
    photo = wound_photo_for_user(user=user, photo_id=photo_id)
    if photo is None:
        raise Http404("no such photograph")
    audit_note(
        request,
        entity_type="woundphoto",
        entity_id=str(photo.pk),
        patient_id=photo.enrollment.patient_id,
        subtype=f"workspace wound photo {variant}",
    )
    return file_response(photo, variant, download=request.GET.get("download") == "1")
