"""Fixtures: the bundled pathway, a site, and a user per role."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from pathways.choices import Role
from pathways.models import PathwayTemplate, Site, User
from pathways.services.content import content_files, pathways_load
from tests.factories import SiteFactory, UserFactory


@pytest.fixture
def pathway(db: None) -> PathwayTemplate:
    """The bundled calciphylaxis pathway, loaded as it ships."""
    pathways_load(paths=content_files(Path(settings.CAREPATH["CONTENT_DIR"])))
    return PathwayTemplate.objects.get(slug="calciphylaxis", status="active")


@pytest.fixture
def site(db: None) -> Site:
    return SiteFactory(code="chi", timezone="America/Chicago")


@pytest.fixture
def other_site(db: None) -> Site:
    return SiteFactory(code="nyc", timezone="America/New_York")


@pytest.fixture
def coordinator(site: Site) -> User:
    return UserFactory(username="coord", roles=[Role.COORDINATOR], sites=[site])


@pytest.fixture
def auditor(site: Site) -> User:
    return UserFactory(username="audit", roles=[Role.AUDITOR], sites=[site])


@pytest.fixture
def admin_user(site: Site) -> User:
    return UserFactory(username="boss", roles=[Role.ADMIN], sites=[site])


@pytest.fixture
def wound_nurse(site: Site) -> User:
    return UserFactory(username="wound", roles=[Role.WOUND_NURSING], sites=[site])


@pytest.fixture
def nephrologist(site: Site) -> User:
    return UserFactory(username="neph", roles=[Role.NEPHROLOGY], sites=[site])


@pytest.fixture
def dialysis_nurse(site: Site) -> User:
    return UserFactory(username="dialysis", roles=[Role.DIALYSIS_NURSING], sites=[site])
