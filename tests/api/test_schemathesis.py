"""Issue 12, section 9: the OpenAPI schema describes what every operation does.

schemathesis generates requests from /api/v1/schema/ for every operation and runs all of its checks on each
answer (no server error, status codes, content types, headers and bodies as documented, valid data accepted,
invalid data rejected, ...), as a coordinator and as an auditor with a real API token. It calls the WSGI
application in-process, so every request runs against this test's PostgreSQL database and is rolled back
with it. Bounded: EXAMPLES per operation and a derandomized seed keep one role's run to about a minute."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings

from carepath.wsgi import application
from pathways.services.api_tokens import api_token_issue
from tests.api.conftest import World

EXAMPLES = 4
# What a valid-by-the-schema request may still be answered with: a reference the caller cannot see (400,
# docs/api.md "References to objects outside your scope read as does not exist"), a role not allowed to act
# (403), an id that does not exist (404), a stale version or illegal transition (409).
ACCEPTED_FOR_VALID_DATA = ["2xx", "400", "401", "403", "404", "409"]


@pytest.fixture
def in_process_wsgi():
    """Keep the test's database connection open across WSGI requests, as django.test.Client does: the
    handler's request_started/finished signals would otherwise close it (and the test's transaction)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _schema() -> schemathesis.schemas.BaseSchema:
    config = schemathesis.config.SchemathesisConfig.from_dict(
        {"checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED_FOR_VALID_DATA}}}
    )
    return schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", application, config=config)


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("role", ["coordinator", "auditor"])
def test_every_operation_answers_as_the_schema_says(world: World, role: str, in_process_wsgi: None) -> None:
    token = api_token_issue(user=world.users[role])[1]
    headers = {"Authorization": f"Token {token}"}
    failures: list[str] = []
    operations, calls = 0, []
    for result in _schema().get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case: schemathesis.Case) -> None:
            response = case.call_and_validate(headers=headers)
            calls.append(response.status_code)

        try:
            run()
        except Exception as exc:  # one line per failing operation; the rest still run
            failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:1500]}")
    assert operations >= 30 and len(calls) >= 2 * operations, (operations, len(calls))
    # Both kinds of answer were exercised: accepted requests and rejected ones.
    assert any(200 <= status < 300 for status in calls) and any(400 <= status < 500 for status in calls)
    assert not failures, "\n\n".join(failures)
