"""Where wound photographs are stored, from the environment (README, "Wound photographs"; docs/security.md).

Never publicly addressable: Carepath serves them only through its scoped, audited views, so neither backend is
given a URL to hand out. Default: files under var/photos/ (CAREPATH_PHOTOS_DIR), readable by the service's
user only. With CAREPATH_PHOTOS_S3_BUCKET set: any S3-compatible store through django-storages, private
objects, server-side encryption unless CAREPATH_PHOTOS_S3_SSE is "" (for stores that do not offer it).
https://django-storages.readthedocs.io/en/latest/backends/amazon-S3.html
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import environ


def wound_photo_storage(env: environ.Env, var_dir: Path) -> dict[str, Any]:
    """The STORAGES["wound_photos"] entry the environment describes."""
    bucket = env.str("CAREPATH_PHOTOS_S3_BUCKET", default="")
    if not bucket:
        return {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {
                "location": env.str("CAREPATH_PHOTOS_DIR", default=str(var_dir / "photos")),
                "base_url": None,
                "file_permissions_mode": 0o600,
                "directory_permissions_mode": 0o700,
            },
        }
    sse = env.str("CAREPATH_PHOTOS_S3_SSE", default="AES256")  # "AES256" (SSE-S3), "aws:kms", or "" for none
    object_parameters: dict[str, str] = {"ServerSideEncryption": sse} if sse else {}
    kms_key = env.str("CAREPATH_PHOTOS_S3_KMS_KEY_ID", default="")
    if sse == "aws:kms" and kms_key:
        object_parameters["SSEKMSKeyId"] = kms_key
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            # Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or the instance's role, as boto3 finds them.
            "endpoint_url": env.str("CAREPATH_PHOTOS_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("CAREPATH_PHOTOS_S3_REGION", default="") or None,
            "location": env.str("CAREPATH_PHOTOS_S3_PREFIX", default="wound-photos"),
            "default_acl": "private",
            "file_overwrite": False,
            "object_parameters": object_parameters,
        },
    }
