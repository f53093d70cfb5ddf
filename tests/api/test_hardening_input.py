"""Issue 12, sections 1 and 2: no request produces a 5xx, and each kind of value has one strict reading.

Each kind of fault is exercised over every route it can occur on: the POST routes and the date-time filters
are taken from the URL configuration and the filtersets, not listed by hand."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.urls import get_resolver

from pathways.api.parsers import MAX_JSON_DEPTH, json_depth
from pathways.api.urls import router
from pathways.domain import instants, units
from pathways.errors import InvalidInput
from pathways.models import AuditEvent, Observation, Patient, Task, TaskEvent
from tests.api.conftest import World, client_for, notify
from tests.photos.conftest import photo_on

ARABIC_INDIC_TEN = "\u0661\u0660"


def _error(response, status: int, *fields: str) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    error = response.json()["error"]
    assert set(error) == {"code", "message", "fields"} and error["message"]
    for name in fields:
        # Nested fields use dotted names (values.0.value).
        assert any(f == name or f.endswith("." + name) for f in error["fields"]), error
    return error


def _client(user):
    client = client_for(user)
    # A 500 must show up as a status code here, not as an exception raised into the test.
    client.raise_request_exception = False
    return client


def _post_routes(world: World) -> list[str]:
    """Every POST route of the API (from the router), with in-scope ids of the coordinator's filled in."""
    ids = {
        "tasks": world.task.pk,
        "enrollments": world.enrollment.pk,
        "patients": world.patient.pk,
        "notifications": notify(world.users["coordinator"], world.task).pk,
        "wound-photos": photo_on(world.enrollment, world.users["admin"]).pk,
    }
    routes = ["/api/v1/auth/token/"]
    for pattern in router.urls:
        actions = getattr(pattern.callback, "actions", {})
        if "post" not in actions:
            continue
        path = str(pattern.pattern).strip("^$")
        path = path.replace("(?P<pk>[^/.]+)", str(ids.get(path.split("/")[0], 0)))
        path = path.replace("(?P<member_id>[0-9]+)", str(world.member.pk))
        assert "(" not in path, path
        routes.append("/api/v1/" + path)
    assert len(routes) > 15, routes
    return sorted(set(routes))


# --- section 1: no 5xx ---------------------------------------------------------------------------------


@pytest.mark.postgres
def test_an_unreadable_body_gets_the_views_own_answer_on_every_post_route(world: World) -> None:
    client = _client(world.users["coordinator"])
    for path in _post_routes(world):
        response = client.post(path, "{", content_type="application/json")
        assert response.status_code in (400, 404), (path, response.status_code, response.content[:200])
        _error(response, response.status_code)


@pytest.mark.postgres
def test_the_issue_examples_of_unreadable_bodies(world: World) -> None:
    client, anonymous = _client(world.users["coordinator"]), _client(None)
    before = Task.objects.count(), TaskEvent.objects.count()
    assert _error(client.post("/api/v1/tasks/999999/claim/", "{", content_type="application/json"), 404)
    _error(anonymous.post("/api/v1/patients/", "{", content_type="application/json"), 401)
    _error(client.post("/api/v1/observations/", "value 3", content_type="text/plain"), 415)
    _error(client.generic("POST", "/api/v1/observations/", "", content_type=""), 415)
    assert (Task.objects.count(), TaskEvent.objects.count()) == before
    assert Observation.objects.count() == 0


@pytest.mark.postgres
def test_a_text_plain_body_is_a_415_on_every_post_route(world: World) -> None:
    client = _client(world.users["coordinator"])
    for path in _post_routes(world):
        response = client.post(path, "version=1", content_type="text/plain")
        _error(response, 415)


@pytest.mark.postgres
def test_deep_json_is_a_400_on_every_post_route_even_anonymous(world: World) -> None:
    deep = "[" * 1000 + "]" * 1000
    clients = {"anonymous": _client(None), "coordinator": _client(world.users["coordinator"])}
    for path in _post_routes(world):
        response = clients["anonymous" if "auth/token" in path else "coordinator"].post(
            path, deep, content_type="application/json"
        )
        assert "levels deep" in _error(response, 400)["message"], path
    nested: object = 1
    for _ in range(MAX_JSON_DEPTH):
        nested = [nested]
    assert json_depth(nested) == MAX_JSON_DEPTH


@pytest.mark.postgres
def test_a_body_over_the_size_limit_is_a_413_in_the_error_shape(world: World, settings) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    client = _client(world.users["coordinator"])
    body = json.dumps({"enrollment": world.enrollment.pk, "note": "x" * 20_000})
    for path in ("/api/v1/observations/", "/api/v1/auth/token/", f"/api/v1/tasks/{world.task.pk}/claim/"):
        assert _error(client.post(path, body, content_type="application/json"), 413)["code"] == "too_large"
    assert Observation.objects.count() == 0


@pytest.mark.postgres
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/patients/%00/",
        "/api/v1/tasks/%00/",
        "/api/v1/enrollments/%00/schedule/",
        f"/api/v1/patients/{ARABIC_INDIC_TEN}/",
        "/api/v1/tasks/99999999999999999999999/",
        "/api/v1/tasks/-1/",
    ],
)
def test_a_path_id_that_is_not_plain_digits_is_a_404_and_audited(world: World, path: str) -> None:
    before = AuditEvent.objects.count()
    _error(_client(world.users["coordinator"]).get(path), 404)
    event = AuditEvent.objects.order_by("-pk").first()
    assert AuditEvent.objects.count() == before + 1 and event is not None
    assert event.http_status == 404 and "\x00" not in event.path


def _datetime_filters() -> list[tuple[str, str]]:
    """(list route, parameter) for every date-time filter of every filterset in the API."""
    from pathways.api.fields import AwareDateTimeFilter

    found = []
    for prefix, viewset, _ in router.registry:
        filterset = getattr(viewset, "filterset_class", None)
        for name, flt in filterset.base_filters.items() if filterset else []:
            if isinstance(flt, AwareDateTimeFilter):
                found.append((f"/api/v1/{prefix}/", name))
    found += [("/api/v1/adherence/", "start"), ("/api/v1/adherence/", "end")]
    return found


def test_every_date_time_filter_is_the_strict_one() -> None:
    import django_filters

    for prefix, viewset, _ in router.registry:
        filterset = getattr(viewset, "filterset_class", None)
        for name, flt in filterset.base_filters.items() if filterset else []:
            assert not isinstance(flt, django_filters.IsoDateTimeFilter | django_filters.DateTimeFilter), (prefix, name)
    assert len(_datetime_filters()) >= 8


@pytest.mark.postgres
@pytest.mark.parametrize(
    "value",
    [
        "2026-01-01T00:00:00%2B16:00",
        "2026-01-01T00:00:00-20:00",
        "0001-01-02T00:00:00Z",
        "9999-12-31T23:00:00-05:00",
        "2026-11-29T08:00:00",
        "2026-01-01T00:00:00%2B14:30",
        "soon",
    ],
)
def test_date_time_query_parameters_postgresql_cannot_hold_are_a_400_naming_the_parameter(
    world: World, value: str
) -> None:
    auditor = _client(world.users["admin"])
    for path, name in _datetime_filters():
        _error(auditor.get(f"{path}?{name}={value}"), 400, name)


@pytest.mark.postgres
def test_the_adherence_example_and_its_bounds(world: World) -> None:
    client = _client(world.users["auditor"])
    _error(client.get("/api/v1/adherence/?end=0001-01-02"), 400, "end")
    _error(client.get("/api/v1/adherence/?start=2026-01-01T00:00:00"), 400, "start")
    assert client.get("/api/v1/adherence/?start=2026-01-01&end=2026-01-31T00:00:00%2B05:30").status_code == 200


@pytest.mark.postgres
@pytest.mark.parametrize("value", ["1e309", 1e308, "1" * 32, "1_0", ARABIC_INDIC_TEN, "-0", "-0.0", "NaN", "+3", " "])
def test_numbers_out_of_range_or_not_plain_decimal_are_a_400_and_store_nothing(world: World, value: object) -> None:
    client = _client(world.users["coordinator"])
    body = {"enrollment": world.enrollment.pk, "values": [{"code": "pain_score", "value": value}]}
    _error(client.post("/api/v1/observations/", body, format="json"), 400, "value")
    body = {
        "enrollment": world.enrollment.pk,
        "values": [{"code": "pth", "value": "300", "unit": "pg/mL", "reference_high": value}],
    }
    _error(client.post("/api/v1/observations/", body, format="json"), 400, "reference_high")
    assert Observation.objects.count() == 0


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/observations/", {"enrollment": "1_0", "values": []}, "enrollment"),
        ("/api/v1/observations/", {"enrollment": ARABIC_INDIC_TEN, "values": []}, "enrollment"),
        ("/api/v1/observations/", {"enrollment": 1e20, "values": []}, "enrollment"),
        ("/api/v1/task-completions/", {"task": 1, "version": "1_0"}, "version"),
        ("/api/v1/task-completions/", {"task": 1, "version": 2**40}, "version"),
        ("/api/v1/enrollments/", {"patient": ARABIC_INDIC_TEN, "pathway": "calciphylaxis"}, "patient"),
        ("/api/v1/enrollments/", {"patient": "1_0", "pathway": "calciphylaxis"}, "patient"),
    ],
)
def test_ids_and_versions_are_ascii_integers_in_bodies(world: World, path: str, body: dict, field: str) -> None:
    _error(_client(world.users["coordinator"]).post(path, body, format="json"), 400, field)


@pytest.mark.postgres
@pytest.mark.parametrize(
    "query",
    [f"limit={ARABIC_INDIC_TEN}", "limit=1_0", "offset=1_0", "enrollment=1_0", f"patient={ARABIC_INDIC_TEN}"],
)
def test_ids_and_page_parameters_are_ascii_integers_in_queries(world: World, query: str) -> None:
    _error(_client(world.users["coordinator"]).get(f"/api/v1/tasks/?{query}"), 400, query.split("=")[0])


@pytest.mark.postgres
def test_schedule_days_are_ascii_integers(world: World) -> None:
    client = _client(world.users["coordinator"])
    _error(client.get(f"/api/v1/enrollments/{world.enrollment.pk}/schedule/?days=1_0"), 400, "days")


# --- section 2: datetimes carry an offset; plausible dates --------------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("effective_at", "message"),
    [
        ("2026-11-29T08:00:00", "offset"),
        ("2026-11-29", "offset"),
        ("0001-01-01T00:00:00Z", "1900"),
        ("1800-01-01T00:00:00Z", "1900"),
        ("1999-12-31T23:59:00Z", "2000-01-01"),
    ],
)
def test_observation_times_need_an_offset_and_a_plausible_date(world: World, effective_at: str, message: str) -> None:
    client = _client(world.users["coordinator"])
    for body in (
        {
            "enrollment": world.enrollment.pk,
            "effective_at": effective_at,
            "values": [{"code": "pain_score", "value": 3}],
        },
        {
            "enrollment": world.enrollment.pk,
            "values": [{"code": "pain_score", "value": 3, "effective_at": effective_at}],
        },
    ):
        error = _error(client.post("/api/v1/observations/", body, format="json"), 400)
        assert any(name.endswith("effective_at") for name in error["fields"]), error
        assert message in json.dumps(error)
    assert Observation.objects.count() == 0


@pytest.mark.postgres
def test_an_observation_with_an_offset_is_stored_at_that_instant(world: World) -> None:
    client = _client(world.users["coordinator"])
    body = {
        "enrollment": world.enrollment.pk,
        "effective_at": "2026-01-05T08:00:00-06:00",
        "values": [{"code": "pain_score", "value": "3"}],
    }
    response = client.post("/api/v1/observations/", body, format="json")
    assert response.status_code == 201, response.content[:300]
    stored = Observation.objects.get()
    assert stored.effective_at.isoformat() == "2026-01-05T14:00:00+00:00"
    assert stored.value == Decimal("3")


@pytest.mark.postgres
@pytest.mark.parametrize("effective_at", ["2026-11-29T08:00:00", "1800-01-01T00:00:00Z"])
def test_medication_change_times_need_an_offset_and_a_plausible_date(world: World, effective_at: str) -> None:
    body = {
        "enrollment": world.enrollment.pk,
        "medication": "warfarin",
        "drug_name": "warfarin",
        "effective_at": effective_at,
    }
    _error(_client(world.users["coordinator"]).post("/api/v1/medication-changes/", body, format="json"), 400)


@pytest.mark.postgres
@pytest.mark.parametrize("birth_date", ["0001-01-01", "1899-12-31", "2999-01-01", f"19{ARABIC_INDIC_TEN}-01-01"])
def test_birth_dates_are_plausible(world: World, birth_date: str) -> None:
    body = {
        "site": world.site.pk,
        "mrn": "NEW-BOUNDS",
        "given_name": "Synthetic",
        "family_name": "Person",
        "birth_date": birth_date,
        "dialysis_modality": "HD",
    }
    before = Patient.objects.count()
    _error(_client(world.users["coordinator"]).post("/api/v1/patients/", body, format="json"), 400, "birth_date")
    assert Patient.objects.count() == before


@pytest.mark.postgres
@pytest.mark.parametrize("until", ["9999-12-31T00:00:00Z", "2999-01-01T00:00:00Z", "2030-01-01T00:00:00"])
def test_a_task_hold_is_bounded_and_needs_an_offset(world: World, until: str) -> None:
    client = _client(world.users["admin"])
    task = Task.objects.get(pk=world.task.pk)
    body = {"version": task.version, "reason": "imaging", "until": until}
    _error(client.post(f"/api/v1/tasks/{task.pk}/hold/", body, format="json"), 400, "until")
    assert Task.objects.get(pk=task.pk).version == task.version


# --- the parsers themselves -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("6.5", Decimal("6.5")),
        ("-1.25", Decimal("-1.25")),
        (" 10 ", Decimal(10)),
        (7, Decimal(7)),
        (0.1, Decimal("0.1")),
        # A double as an interface prints it (Synthea): read whole, rounded to four places when stored.
        (9.033962176872736, Decimal("9.033962176872736")),
    ],
)
def test_to_decimal_reads_plain_decimal_notation(text: object, expected: Decimal) -> None:
    assert units.to_decimal(text) == expected


@pytest.mark.parametrize(
    "text",
    ["1e3", "1_0", ARABIC_INDIC_TEN, "-0", "Infinity", "NaN", "+1", ".5", "5.", "1" * 10, "0." + "1" * 18, True, None],
)
def test_to_decimal_rejects_everything_else(text: object) -> None:
    with pytest.raises(InvalidInput):
        units.to_decimal(text)


@pytest.mark.parametrize("text", ["1_0", ARABIC_INDIC_TEN, "+1", "1.0", " 1", "", "1" * 19, True, 1.0])
def test_to_int_rejects_anything_but_ascii_digits(text: object) -> None:
    with pytest.raises(InvalidInput):
        units.to_int(text, field_name="n")


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-01T00:00:00+16:00",
        "2026-01-01T00:00:00-20:00",
        "2026-01-01T00:00:00",
        "2026-01-01",
        "0001-01-01T00:00:00Z",
        "3000-01-01T00:00:00Z",
        f"2026-01-01T00:00:{ARABIC_INDIC_TEN}Z",
        "2026-02-30T00:00:00Z",
    ],
)
def test_parse_aware_datetime_rejects_naive_unbounded_and_malformed_values(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        instants.parse_aware_datetime(text, field_name="since")
    assert "since" in caught.value.fields


def test_parse_aware_datetime_keeps_the_instant() -> None:
    moment = instants.parse_aware_datetime("2026-11-01T01:45:00-06:00", field_name="at")
    assert moment.isoformat() == "2026-11-01T01:45:00-06:00"
    assert instants.parse_aware_datetime("2026-11-01T07:45Z", field_name="at").utcoffset().total_seconds() == 0


def test_every_route_is_reachable_through_the_resolver() -> None:
    # Guards _post_routes against a router change that would leave this file testing nothing.
    assert any(str(p.pattern).startswith("api/v1/") for p in get_resolver().url_patterns)
