"""factory_boy factories: synthetic data only."""

from __future__ import annotations

import datetime as dt
from typing import Any

import factory
from factory.django import DjangoModelFactory

from pathways.choices import DialysisModality, Sex
from pathways.models import Patient, Site, User


class SiteFactory(DjangoModelFactory):
    class Meta:
        model = Site
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"site{n}")
    name = factory.LazyAttribute(lambda o: f"Test site {o.code}")
    timezone = "America/Chicago"


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.org")
    roles: Any = factory.LazyFunction(list)
    password = factory.django.Password("test-password-123")

    @factory.post_generation
    def sites(self, create: bool, extracted: list[Site] | None, **kwargs: Any) -> None:
        if create and extracted:
            self.sites.set(extracted)


class PatientFactory(DjangoModelFactory):
    class Meta:
        model = Patient

    site = factory.SubFactory(SiteFactory)
    mrn = factory.Sequence(lambda n: f"TEST-{n:05d}")
    given_name = "Synthetic"
    family_name = factory.Sequence(lambda n: f"Patient{n}")
    birth_date = dt.date(1960, 5, 17)
    sex = Sex.FEMALE
    dialysis_modality = DialysisModality.HEMODIALYSIS
    dialysis_days: Any = factory.LazyFunction(lambda: [0, 2, 4])
    dialysis_session_time = dt.time(13, 0)
    risk_factors: Any = factory.LazyFunction(list)
    risk_medications: Any = factory.LazyFunction(list)
