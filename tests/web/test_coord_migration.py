"""The coordinators' version-migration pages: the diff and plan shown, the move made through the service,
roles and scoping (another site's enrollment is a 404), and bad input as a 4xx."""

from __future__ import annotations

import pytest

from pathways.choices import EnrollmentEventKind
from pathways.models import Enrollment, EnrollmentEvent
from pathways.services.enrollment import enrollment_hold
from tests.versions import ADDED, REMOVED, REPLANNED, RULE_CHANGED, load_version_two
from tests.web.conftest import World
from tests.web.test_coord_pages import client_as

pytestmark = pytest.mark.django_db


@pytest.fixture
def v2_world(world: World) -> World:
    load_version_two()
    return world


def test_the_enrollment_page_shows_the_diff_and_the_plan_and_moves_it(v2_world: World) -> None:
    client = client_as(v2_world.users["coordinator"])
    url = f"/enrollments/{v2_world.enrollment.pk}/migrate/"
    body = client.get(url).content.decode()
    for code in (ADDED, REMOVED, REPLANNED, RULE_CHANGED):
        assert code in body
    assert "removed in v2" in body and f"Start <code>{ADDED}</code>" in body
    assert "Move to version 2" in body

    response = client.post(url, {"to_version": "2"})
    assert response.status_code == 302 and response["Location"] == f"/patients/{v2_world.patient.pk}/"
    assert Enrollment.objects.get(pk=v2_world.enrollment.pk).template.version == 2
    event = EnrollmentEvent.objects.get(enrollment=v2_world.enrollment, kind=EnrollmentEventKind.MIGRATED)
    assert event.actor == v2_world.users["coordinator"]
    assert "nothing to move" in client.get(url).content.decode()
    again = client.post(url, {"to_version": "2"})
    assert again.status_code == 409 and b"already on version 2" in again.content


def test_an_on_hold_enrollment_moves_from_its_own_page(v2_world: World) -> None:
    enrollment_hold(enrollment_id=v2_world.enrollment.pk, actor=None, reason="away")
    client = client_as(v2_world.users["coordinator"])
    response = client.post(f"/enrollments/{v2_world.enrollment.pk}/migrate/", {"to_version": "2"})
    assert response.status_code == 302
    assert Enrollment.objects.get(pk=v2_world.enrollment.pk).template.version == 2


@pytest.mark.parametrize("value", ["", "x", "0", "99", "1" * 30])
def test_a_bad_version_is_a_4xx_and_moves_nothing(v2_world: World, value: str) -> None:
    client = client_as(v2_world.users["coordinator"])
    response = client.post(f"/enrollments/{v2_world.enrollment.pk}/migrate/", {"to_version": value})
    assert 400 <= response.status_code < 500
    assert Enrollment.objects.get(pk=v2_world.enrollment.pk).template.version == 1


@pytest.mark.parametrize("role", ["auditor", "wound_nurse", "nephrologist"])
def test_only_coordinators_and_admins_may_open_or_post(v2_world: World, role: str) -> None:
    client = client_as(v2_world.users[role])
    for url in (f"/enrollments/{v2_world.enrollment.pk}/migrate/", "/pathway/migrate/"):
        assert client.get(url).status_code == 403
        assert client.post(url, {"to_version": "2"}).status_code == 403
    assert not EnrollmentEvent.objects.filter(kind=EnrollmentEventKind.MIGRATED).exists()


def test_another_sites_enrollment_is_404_for_a_coordinator(v2_world: World) -> None:
    client = client_as(v2_world.users["coordinator"])
    url = f"/enrollments/{v2_world.other_site_enrollment.pk}/migrate/"
    assert client.get(url).status_code == 404
    assert client.post(url, {"to_version": "2"}).status_code == 404


def test_the_pathway_page_lists_my_sites_plans_and_moves_them(v2_world: World) -> None:
    client = client_as(v2_world.users["coordinator"])
    body = client.get("/pathway/migrate/").content.decode()
    assert "The active version is 2" in body and REPLANNED in body
    assert "2 active enrollments to move" in body  # this coordinator's site: two; the other site's is not listed
    assert f"Enrollment {v2_world.other_site_enrollment.pk} " not in body

    response = client.post("/pathway/migrate/", {"to_version": "2"})
    assert response.status_code == 302
    versions = dict(Enrollment.objects.values_list("pk", "template__version"))
    assert versions[v2_world.enrollment.pk] == versions[v2_world.other_team_enrollment.pk] == 2
    assert versions[v2_world.other_site_enrollment.pk] == 1
    assert "0 active enrollments to move" in client.get("/pathway/migrate/").content.decode()


def test_the_plan_says_a_chain_waiting_on_its_open_occurrence_continues_and_leaves_out_re_plans_that_change_nothing():
    # The user test read "next none -> none (finished)" for dressing changes waiting on an open one, and saw
    # re-plans whose next time did not move.
    from django.template.loader import render_to_string

    def replan(template: str, old: str | None, new: str | None, finished: bool) -> dict:
        return {"template": template, "next_due_at": {"old": old, "new": new}, "finished": finished}

    html = render_to_string(
        "pathways/coord/_migration_plan.html",
        {
            "plan": {
                "enrollment": 1,
                "schedules_replanned": [
                    replan("dressing-change", None, None, False),
                    replan("wound-assessment", "2026-12-02T12:00:00+00:00", "2026-12-02T12:00:00+00:00", False),
                    replan("team-huddle", "2026-12-02T12:00:00+00:00", None, True),
                ],
                "open_tasks_kept": 3,
            }
        },
    )
    assert (
        "dressing-change</code> from now: next after the open one is completed → after the open one is completed"
        in html
    )
    assert "wound-assessment" not in html
    assert "team-huddle</code> from now: next 2026-12-02T12:00:00+00:00 → none (the schedule finishes)" in html
    assert "(finished)" not in html


def test_the_diff_reads_in_words_not_python_data():
    # The user test read "recurrence: {'kind': 'interval', 'every_days': 7} -> {...}" on the coordinator's page.
    from pathways.web.migration import readable_diff

    diff = {
        "task_templates": {
            "changed": [
                {
                    "code": "wound-assessment",
                    "fields": {
                        "recurrence": {
                            "old": {"kind": "interval", "every_days": 7},
                            "new": {"kind": "interval", "every_days": 3},
                        },
                        "first_due": {"old": {"day": 0}, "new": {"day": 2, "at": "09:00"}},
                        "applies_if": {"old": {}, "new": {"dialysis_modality": ["HD"]}},
                        "title": {"old": "Wound check", "new": None},
                    },
                },
                {
                    "code": "dressing-change",
                    "fields": {"recurrence": {"old": {"kind": "after_completion", "hours": 48}, "new": {"kind": "x"}}},
                },
            ]
        },
        "rules": {"changed": []},
    }
    fields = readable_diff(diff)["task_templates"]["changed"][0]["fields"]
    assert fields["recurrence"] == {"old": "every 7 days", "new": "every 3 days"}
    assert fields["first_due"] == {"old": "day 0", "new": "day 2 at 09:00"}
    assert fields["applies_if"] == {"old": "{}", "new": '{"dialysis_modality": ["HD"]}'}
    assert fields["title"] == {"old": "Wound check", "new": "none"}
    dressing = readable_diff(diff)["task_templates"]["changed"][1]["fields"]["recurrence"]
    assert dressing["old"] == "48 h after each completion"
    assert "{" not in dressing["old"]
