"""Wound photographs over the API: upload (multipart) to a wound-assessment task, list and read the metadata,
fetch the thumbnail or the full image, soft-delete with a reason (docs/api.md, "Wound photographs").

The files are served only here and by the workspace's views, from a queryset scoped like the task's
enrollment (access.scope_wound_photos): another site's photo, or one of a patient whose care team the caller
is not on, is a 404, for the metadata and both files alike. The audit middleware records every request,
each file fetched included, with the photo's id and patient."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from pathways.api.base import ScopedViewSet, StrictSerializer, staff, validated_body
from pathways.api.fields import AwareDateTimeField, IdFilter, StrictIntegerField
from pathways.choices import AuditAction
from pathways.middleware import audit_note
from pathways.models import WoundPhoto
from pathways.photo_files import file_response, read_upload
from pathways.selectors.access import scope_wound_photos
from pathways.services.photos import PhotoInput, wound_photo_add, wound_photo_delete


class WoundPhotoSerializer(serializers.ModelSerializer):
    patient = serializers.IntegerField(source="enrollment.patient_id", read_only=True)
    image_url = serializers.SerializerMethodField(help_text="The full image (scoped and audited), JPEG or PNG.")
    thumbnail_url = serializers.SerializerMethodField(help_text="The thumbnail (scoped and audited), JPEG.")

    class Meta:
        model = WoundPhoto
        fields = [
            "id",
            "enrollment",
            "patient",
            "task",
            "assessment",
            "lesion",
            "body_site",
            "taken_at",
            "taken_by",
            "recorded_at",
            "length_cm",
            "width_cm",
            "depth_cm",
            "note",
            "detected_type",
            "content_type",
            "width_px",
            "height_px",
            "size_bytes",
            "sha256",
            "image_url",
            "thumbnail_url",
        ]
        read_only_fields = fields

    def get_image_url(self, photo: WoundPhoto) -> str:
        return f"/api/v1/wound-photos/{photo.pk}/image/"

    def get_thumbnail_url(self, photo: WoundPhoto) -> str:
        return f"/api/v1/wound-photos/{photo.pk}/thumbnail/"


class WoundPhotoCreateSerializer(StrictSerializer):
    task = StrictIntegerField(min_value=1, help_text="The wound-assessment task the photo belongs to.")
    image = serializers.FileField(
        allow_empty_file=True, help_text="JPEG or PNG (type read from the content); re-encoded before storage."
    )
    lesion = serializers.CharField(max_length=64, help_text='The lesion\'s stable label, e.g. "L1 left thigh".')
    body_site = serializers.CharField(max_length=200)
    taken_at = AwareDateTimeField(required=False, allow_null=True, default=None)
    length_cm = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    width_cm = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    depth_cm = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class WoundPhotoDeleteSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=500)


class WoundPhotoFilter(django_filters.FilterSet):
    enrollment = IdFilter(field_name="enrollment_id")
    task = IdFilter(field_name="task_id")
    patient = IdFilter(field_name="enrollment__patient_id")
    lesion = django_filters.CharFilter(field_name="lesion", max_length=64)

    class Meta:
        model = WoundPhoto
        fields: list[str] = []


_FILE_SCHEMA = {
    (200, "image/jpeg"): OpenApiResponse(OpenApiTypes.BINARY),
    (200, "image/png"): OpenApiResponse(OpenApiTypes.BINARY),
}


class WoundPhotoViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    """Wound photographs of the enrollments the caller may see, by lesion and time.

    POST (multipart/form-data) attaches one photo to a wound-assessment task: whoever may complete the task.
    Not JPEG/PNG by content, or a name that says another type: 415; over the size or pixel limit: 413; empty
    or undecodable: 400. Nothing is stored unless the upload is accepted."""

    queryset = WoundPhoto.objects.none()
    serializer_class = WoundPhotoSerializer
    filterset_class = WoundPhotoFilter
    query_params_allowed = {"image": ["download"]}

    def get_queryset(self) -> QuerySet[Any]:
        return (
            scope_wound_photos(staff(self.request))
            .select_related("enrollment")
            .order_by("enrollment_id", "lesion", "taken_at", "pk")
        )

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # An <img> asks for image/*; the file actions answer with the stored type whatever Accept says.
        return super().perform_content_negotiation(request, force=force or self.action in ("image", "thumbnail"))

    @extend_schema(
        request={"multipart/form-data": WoundPhotoCreateSerializer},
        responses={201: WoundPhotoSerializer},
    )
    def create(self, request: Request) -> Response:
        data = validated_body(WoundPhotoCreateSerializer, request)
        upload = data["image"]
        photo = wound_photo_add(
            task_id=data["task"],
            photo=PhotoInput(
                data=read_upload(upload),
                filename=upload.name or "",
                lesion=data["lesion"],
                body_site=data["body_site"],
                taken_at=data["taken_at"],
                length_cm=data["length_cm"],
                width_cm=data["width_cm"],
                depth_cm=data["depth_cm"],
                note=data["note"],
            ),
            actor=staff(request),
        )
        audit_note(request, entity_type="woundphoto", entity_id=str(photo.pk), patient_id=photo.enrollment.patient_id)
        return Response(WoundPhotoSerializer(photo).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[OpenApiParameter("download", bool, description="1: as an attachment (a download)")],
        responses=_FILE_SCHEMA,
    )
    @action(detail=True, methods=["get"])
    def image(self, request: Request, pk: str) -> HttpResponse:
        """The full image (re-encoded: no EXIF, no GPS). Audited as a view, or a download with ?download=1."""
        photo = self.get_object()
        download = request.query_params.get("download", "") in ("1", "true")
        audit_note(request, subtype="wound photo download" if download else "wound photo image")
        return file_response(photo, "image", download=download)

    @extend_schema(responses={(200, "image/jpeg"): OpenApiResponse(OpenApiTypes.BINARY)})
    @action(detail=True, methods=["get"])
    def thumbnail(self, request: Request, pk: str) -> HttpResponse:
        """The thumbnail (JPEG, longest edge CAREPATH["PHOTO_THUMBNAIL_EDGE"] px). Audited."""
        photo = self.get_object()
        audit_note(request, subtype="wound photo thumbnail")
        return file_response(photo, "thumbnail")

    @extend_schema(request=WoundPhotoDeleteSerializer, responses={204: None})
    @action(detail=True, methods=["post"], url_path="delete", url_name="delete")
    def soft_delete(self, request: Request, pk: str) -> Response:
        """Soft-delete with a reason: hidden at once, files purged after the retention period. Audited."""
        photo = self.get_object()
        data = validated_body(WoundPhotoDeleteSerializer, request)
        wound_photo_delete(photo_id=photo.pk, actor=staff(request), reason=data["reason"])
        audit_note(request, subtype="wound photo delete", action=AuditAction.DELETE)
        return Response(status=status.HTTP_204_NO_CONTENT)
