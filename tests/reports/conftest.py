"""Reports fixtures: the API world (tests/api/conftest.py) is reused for audit coverage."""

from tests.api.conftest import world  # noqa: F401  (fixture re-exported for tests/reports)
