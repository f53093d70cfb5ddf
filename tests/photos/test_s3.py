"""The S3 path: an S3-compatible server started by the test (moto in server mode, on loopback), configured the
way production is (carepath.photo_storage from the environment), behind the same API as the filesystem path."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from typing import Any

import boto3
import environ
import pytest
import requests
from django.core.management import call_command
from django.utils import timezone
from moto.server import ThreadedMotoServer
from PIL import Image

from carepath.photo_storage import wound_photo_storage
from pathways.models import Task, User, WoundPhoto
from tests.photos.conftest import api, gps_exif, jpeg_bytes, png_bytes, upload

pytestmark = pytest.mark.django_db

BUCKET = "carepath-photos-test"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}


@pytest.fixture
def s3(settings: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[Any]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        # One process holds moto's state: start from an empty store whatever ran before.
        requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
        client = boto3.client("s3", endpoint_url=endpoint, **CREDENTIALS)
        client.create_bucket(Bucket=BUCKET)
        for name, value in {
            "CAREPATH_PHOTOS_S3_BUCKET": BUCKET,
            "CAREPATH_PHOTOS_S3_ENDPOINT_URL": endpoint,
            "CAREPATH_PHOTOS_S3_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }.items():
            monkeypatch.setenv(name, value)
        settings.STORAGES = {**settings.STORAGES, "wound_photos": wound_photo_storage(environ.Env(), tmp_path)}
        yield client
    finally:
        server.stop()


def _objects(client: Any) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_photos_go_to_the_s3_store_private_encrypted_and_clean_and_come_back_through_the_scoped_view(
    s3: Any, assessment_task: Task, wound_nurse: User, off_team_wound_nurse: User
) -> None:
    response = upload(api(wound_nurse), assessment_task, jpeg_bytes((640, 480), exif=gps_exif()))

    assert response.status_code == 201, response.content
    photo = WoundPhoto.objects.get(pk=response.json()["id"])
    keys = _objects(s3)
    assert keys == sorted([f"wound-photos/{photo.image_name}", f"wound-photos/{photo.thumbnail_name}"])
    for key in keys:
        head = s3.head_object(Bucket=BUCKET, Key=key)
        assert head["ServerSideEncryption"] == "AES256"
        grants = s3.get_object_acl(Bucket=BUCKET, Key=key)["Grants"]
        assert all("URI" not in g["Grantee"] for g in grants)  # no AllUsers / AuthenticatedUsers grant
    stored = s3.get_object(Bucket=BUCKET, Key=f"wound-photos/{photo.image_name}")["Body"].read()
    assert not Image.open(io.BytesIO(stored)).getexif()
    fetched = api(wound_nurse).get(f"/api/v1/wound-photos/{photo.pk}/image/")
    assert fetched.status_code == 200 and fetched.content == stored
    assert api(wound_nurse).get(f"/api/v1/wound-photos/{photo.pk}/thumbnail/").status_code == 200
    assert api(off_team_wound_nurse).get(f"/api/v1/wound-photos/{photo.pk}/thumbnail/").status_code == 404


def test_a_refused_upload_puts_nothing_in_the_s3_store(s3: Any, assessment_task: Task, wound_nurse: User) -> None:
    response = upload(api(wound_nurse), assessment_task, png_bytes(), name="renamed.jpg")

    assert response.status_code == 415
    assert _objects(s3) == [] and WoundPhoto.objects.count() == 0


def test_the_purge_removes_a_deleted_photos_objects_from_the_s3_store(
    s3: Any, assessment_task: Task, wound_nurse: User
) -> None:
    client = api(wound_nurse)
    photo_id = upload(client, assessment_task, jpeg_bytes()).json()["id"]
    assert (
        client.post(f"/api/v1/wound-photos/{photo_id}/delete/", {"reason": "blurred"}, format="json").status_code == 204
    )
    assert len(_objects(s3)) == 2

    call_command("purge_wound_photos", "--as-of", (timezone.now() + dt.timedelta(days=31)).isoformat())

    assert _objects(s3) == []


def test_a_photo_whose_object_is_gone_from_the_store_is_a_404(
    s3: Any, assessment_task: Task, wound_nurse: User
) -> None:
    photo_id = upload(api(wound_nurse), assessment_task, jpeg_bytes()).json()["id"]
    photo = WoundPhoto.objects.get(pk=photo_id)
    s3.delete_object(Bucket=BUCKET, Key=f"wound-photos/{photo.image_name}")

    assert api(wound_nurse).get(f"/api/v1/wound-photos/{photo_id}/image/").status_code == 404
