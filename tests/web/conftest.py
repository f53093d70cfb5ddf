"""Workspace view-test fixtures: the API's small world (an in-scope enrollment, another site's, another team's)."""

from tests.api.conftest import World, client_for, world  # noqa: F401 - fixtures re-exported for tests/web
