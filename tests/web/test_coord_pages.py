"""The coordinators' pages with Django's client: every page and every role, scoping (another site's object is a
404), query-count guards, malformed input (never a 500), and the audit trail."""

from __future__ import annotations

import pytest
from django.test import Client

from pathways.models import AuditEvent, User
from pathways.services.enrollment import enrollment_apply
from tests.factories import PatientFactory
from tests.web.conftest import World

pytestmark = pytest.mark.django_db

ROLES = ["coordinator", "admin", "auditor", "wound_nurse", "nephrologist"]
ALLOWED = {"coordinator", "admin"}


def client_as(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
        # The first request after signing in stamps the session for the automatic logoff (a session write that
        # the query-count guards below should not count).
        client.get("/accounts/login/")
    return client


def pages(world: World) -> dict[str, str]:
    e = world.enrollment.pk
    return {
        "registry": "/patients/",
        "register": "/patients/new/",
        "edit": f"/patients/{world.patient.pk}/edit/",
        "enrol": f"/patients/{world.spare_patient.pk}/enrol/",
        "care-team": f"/enrollments/{e}/care-team/",
        "calendar": f"/enrollments/{e}/calendar/",
        "hold": f"/enrollments/{e}/hold/",
        "resume": f"/enrollments/{e}/resume/",
        "complete": f"/enrollments/{e}/complete/",
        "revoke": f"/enrollments/{e}/revoke/",
        "release-hold": f"/enrollments/{e}/release-hold/",
        "board": "/assign/",
        "reassign": f"/assign/{world.task.pk}/reassign/",
    }


def other_site_pages(world: World) -> dict[str, str]:
    e = world.other_site_enrollment.pk
    return {
        "edit": f"/patients/{world.other_site_patient.pk}/edit/",
        "enrol": f"/patients/{world.other_site_patient.pk}/enrol/",
        "care-team": f"/enrollments/{e}/care-team/",
        "calendar": f"/enrollments/{e}/calendar/",
        "hold": f"/enrollments/{e}/hold/",
        "release-hold": f"/enrollments/{e}/release-hold/",
        "reassign": f"/assign/{world.other_site_task.pk}/reassign/",
    }


@pytest.mark.parametrize("role", ROLES)
def test_every_page_answers_each_role_with_the_right_status(world: World, role: str) -> None:
    client = client_as(world.users[role])
    expected = 200 if role in ALLOWED else 403
    for name, url in pages(world).items():
        response = client.get(url)
        assert response.status_code == expected, (name, url, response.status_code)
        if expected == 200:
            assert b"<h1>" in response.content


def test_anonymous_users_are_sent_to_log_in(world: World) -> None:
    for url in pages(world).values():
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url


@pytest.mark.parametrize("role", ["coordinator", "admin"])
def test_another_sites_objects_are_404_for_a_coordinator_and_visible_to_an_admin(world: World, role: str) -> None:
    client = client_as(world.users[role])
    expected = 404 if role == "coordinator" else 200
    for name, url in other_site_pages(world).items():
        assert client.get(url).status_code == expected, name
        if role == "coordinator" and name != "calendar":  # the calendar is read-only (POST is a 405)
            assert client.post(url, {"reason": "x"}).status_code == 404, name


def test_another_teams_enrollment_at_my_site_is_a_coordinators_business(world: World) -> None:
    # Coordinators manage every enrollment at their sites (scope_enrollments); team scoping is for specialists,
    # who get 403 on these pages before any lookup.
    url = f"/enrollments/{world.other_team_enrollment.pk}/care-team/"
    assert client_as(world.users["coordinator"]).get(url).status_code == 200
    assert client_as(world.users["nephrologist"]).get(url).status_code == 403


def test_the_registry_lists_my_sites_patients_with_their_enrollment_status(world: World) -> None:
    response = client_as(world.users["coordinator"]).get("/patients/")
    body = response.content.decode()
    assert world.patient.mrn in body and world.spare_patient.mrn in body
    assert world.other_site_patient.mrn not in body
    assert f'href="/patients/{world.patient.pk}/"' in body
    assert "not enrolled" in body and ">active<" in body
    assert 'href="/assign/"' in body  # the unassigned work, one click away


def test_the_registry_searches_by_mrn_or_name(world: World) -> None:
    client = client_as(world.users["coordinator"])
    mine = PatientFactory(site=world.site, mrn="ZX-4242", given_name="Imogen", family_name="Quartermaine")
    by_mrn = client.get("/patients/", {"q": "zx-42"}).content.decode()
    by_name = client.get("/patients/", {"q": "imogen quarter"}).content.decode()
    for body in (by_mrn, by_name):
        assert mine.mrn in body and world.patient.mrn not in body
    assert "No patients" in client.get("/patients/", {"q": "nobody-like-this"}).content.decode()


def test_the_registry_answers_htmx_with_the_results_fragment(world: World) -> None:
    response = client_as(world.users["coordinator"]).get("/patients/", {"q": world.patient.mrn}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert b"<html" not in response.content and world.patient.mrn.encode() in response.content


# The limits below include what every workspace page costs besides its own reads: the session and user, the
# layout's unread-notification count, and the audit event (in its savepoint) with the sites it concerns.
def _queries(django_assert_max_num_queries, client: Client, url: str, limit: int) -> None:
    with django_assert_max_num_queries(limit):
        assert client.get(url).status_code == 200


def test_the_registry_query_count_does_not_grow_with_patients(world: World, django_assert_max_num_queries) -> None:
    client = client_as(world.users["coordinator"])
    _queries(django_assert_max_num_queries, client, "/patients/", 10)
    PatientFactory.create_batch(20, site=world.site)
    _queries(django_assert_max_num_queries, client, "/patients/", 10)


def test_the_board_query_count_does_not_grow_with_tasks(
    world: World, coordinator: User, django_assert_max_num_queries
) -> None:
    client = client_as(coordinator)
    _queries(django_assert_max_num_queries, client, "/assign/", 13)
    for _ in range(3):
        enrollment_apply(patient_id=PatientFactory(site=world.site).pk, pathway_slug="calciphylaxis", actor=coordinator)
    _queries(django_assert_max_num_queries, client, "/assign/", 13)


def test_the_preview_query_count_is_fixed(world: World, django_assert_max_num_queries) -> None:
    _queries(
        django_assert_max_num_queries,
        client_as(world.users["coordinator"]),
        f"/patients/{world.spare_patient.pk}/enrol/",
        13,
    )


def test_the_board_shows_unassigned_work_by_role_oldest_first(world: World) -> None:
    body = client_as(world.users["coordinator"]).get("/assign/").content.decode()
    assert 'data-role="wound_nursing"' in body and 'data-role="dialysis_nursing"' in body
    assert f'value="{world.task.pk}:{world.task.version}"' in body
    assert f'value="{world.other_site_task.pk}:' not in body
    # The wound-nursing column offers the wound nurse, not the nephrologist.
    column = body.split('data-role="wound_nursing"')[1].split("</section>")[0]
    assert ">wound<" in column and ">neph<" not in column


MALFORMED_GETS = [
    "/patients/abc/edit/",
    "/patients/99999999999999999999/edit/",
    "/patients/99999999999999999999/enrol/",
    "/enrollments/99999999999999999999/care-team/",
    "/enrollments/-1/calendar/",
    "/enrollments/1e3/hold/",
    "/assign/99999999999999999999/reassign/",
    "/enrollments/1/explode/",
]


def test_malformed_ids_are_404_not_500(world: World) -> None:
    client = client_as(world.users["coordinator"])
    for url in MALFORMED_GETS:
        assert client.get(url).status_code == 404, url
        assert client.post(url, {"reason": "x"}).status_code == 404, url


def test_malformed_query_strings_are_400_not_500(world: World) -> None:
    client = client_as(world.users["coordinator"])
    assert client.get("/patients/", {"q": "a\x00b"}).status_code == 400
    assert client.get("/patients/", {"q": "x" * 500}).status_code == 400
    assert client.get("/patients/", {"page": "99999999999999999999"}).status_code == 200
    assert client.get("/assign/", {"patient": "99999999999999999999999"}).status_code == 400
    assert client.get("/assign/", {"patient": "abc"}).status_code == 400


def test_a_coordinator_page_is_audited_with_the_patients_it_showed(world: World) -> None:
    client_as(world.users["coordinator"]).get(f"/patients/{world.patient.pk}/edit/")
    event = AuditEvent.objects.filter(subtype="workspace patient edit").get()
    assert event.patient_id == world.patient.pk and event.actor_id == world.users["coordinator"].pk
