"""HTTP plumbing for wound photographs shared by the API and the workspace: reading an upload within the size
limit, and answering with a stored file so that no browser or shared cache keeps it, sniffs it or frames it."""

from __future__ import annotations

import logging
from typing import Any

from django.http import Http404, HttpResponse

from pathways.models import WoundPhoto
from pathways.selectors.photos import wound_photo_chunks
from pathways.services.photos import image_limits

logger = logging.getLogger(__name__)


def read_upload(upload: Any) -> bytes:
    """The uploaded file's bytes, at most one byte over the size limit (so an oversized file is refused by the
    size check without being read whole into memory)."""
    upload.seek(0)
    data: bytes = upload.read(image_limits().max_bytes + 1)
    return data


def file_response(photo: WoundPhoto, variant: str, *, download: bool = False) -> HttpResponse:
    """The stored file as an HTTP response: never cached by shared caches, never sniffed, never framed."""
    content_type = photo.content_type if variant == "image" else "image/jpeg"
    extension = ".png" if content_type == "image/png" else ".jpg"
    try:
        data = b"".join(wound_photo_chunks(photo, variant))
    except FileNotFoundError as exc:
        # A row whose file is gone (restored database, store cleaned by hand): logged for the operator, and
        # answered like any photo that cannot be shown.
        logger.error("wound photo file missing: photo=%s variant=%s", photo.pk, variant)
        raise Http404("the photograph's file is missing") from exc
    response = HttpResponse(data, content_type=content_type)
    disposition = "attachment" if download else "inline"
    suffix = "" if variant == "image" else "-thumbnail"
    response["Content-Disposition"] = f'{disposition}; filename="wound-photo-{photo.pk}{suffix}{extension}"'
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
