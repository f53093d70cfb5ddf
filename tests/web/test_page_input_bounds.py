"""The pages read numbers and dates with the API's strict readers: what the API refuses with a 400 is a form
error on a page, never a 500 (found by trying the dashboards as an auditor: a year-1 end date and a 20-digit
patient id overflowed)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from pathways.errors import InvalidInput
from pathways.models import AuditEvent, Patient
from pathways.services.patients import patient_create
from tests.api.conftest import World


def _as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "query",
    [
        {"end": "0001-01-01"},
        {"end": "0001-01-02"},
        {"start": "9999-12-31"},
        {"start": "0001-01-01", "end": "0001-01-02"},
        {"end": "\u0662\u0660\u0662\u0666-01-01"},
    ],
)
def test_the_adherence_overview_answers_an_out_of_range_window_with_the_form_error(world: World, query) -> None:
    response = _as(world.users["auditor"]).get("/dashboard/", query)
    assert response.status_code == 200
    assert response.context["form"].errors, "the bad date is reported on the form"


@pytest.mark.parametrize(
    "query",
    [
        {"patient": "99999999999999999999"},
        {"actor": "99999999999999999999"},
        {"patient": "-1"},
        {"patient": "\u0661\u0660"},
        {"since": "0001-01-01T00:00"},
        {"until": "9999-12-31T23:59"},
    ],
)
def test_the_audit_log_answers_an_impossible_filter_with_the_form_error(world: World, query) -> None:
    response = _as(world.users["auditor"]).get("/dashboard/audit/", query)
    assert response.status_code == 200
    assert response.context["form"].errors


def test_a_birth_date_before_1900_is_refused_by_the_service_whatever_the_caller(world: World) -> None:
    before = Patient.objects.count()
    with pytest.raises(InvalidInput) as caught:
        patient_create(
            site=world.site,
            mrn="OLD-0001",
            given_name="Synthetic",
            family_name="Ancient",
            birth_date=dt.date(1, 1, 1),
            dialysis_modality="HD",
            actor=world.users["coordinator"],
        )
    assert "birth_date" in caught.value.fields
    assert Patient.objects.count() == before
    assert not AuditEvent.objects.filter(entity_type="patient", action="create").exists()
