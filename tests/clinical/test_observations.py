"""Recording observations: canonical storage, derived values with their inputs, all-or-nothing rejection."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from pathways.errors import IllegalTransition, InvalidInput, NotFound, NotPermitted
from pathways.models import Assessment, Flag, Observation, RuleFiring, Task
from pathways.services.enrollment import enrollment_complete
from pathways.services.observations import ObservationInput, observation_record, observations_record
from tests.clinical.conftest import ENROLLED_AT
from tests.factories import UserFactory

AT = ENROLLED_AT + dt.timedelta(hours=2)


def test_a_value_is_stored_in_the_canonical_unit_beside_what_was_entered(enrollment) -> None:
    result = observation_record(
        enrollment_id=enrollment.pk, code="phosphate", value="1.8", unit="mmol/L", actor=None, now=AT
    )
    (obs,) = result.observations
    obs.refresh_from_db()
    assert (obs.code, obs.value, obs.unit) == ("phosphate", Decimal("5.5746"), "mg/dL")
    assert (obs.entered_value, obs.entered_unit) == (Decimal("1.8"), "mmol/L")
    assert obs.effective_at == AT


def test_corrected_calcium_and_ca_x_p_come_from_mixed_units_with_their_inputs(enrollment) -> None:
    result = observations_record(
        enrollment_id=enrollment.pk,
        values=[
            ObservationInput("calcium", "2.2", "mmol/L"),  # 8.8176 mg/dL
            ObservationInput("albumin", "30", "g/L"),  # 3.0 g/dL
            ObservationInput("phosphate", "2.0", "mmol/L"),  # 6.194 mg/dL
        ],
        actor=None,
        now=AT,
    )
    derived = {o.code: o for o in result.derived}
    # 8.8176 + 0.8 x (4.0 - 3.0) = 9.6176
    assert derived["corrected_calcium"].value == Decimal("9.6176")
    assert derived["corrected_calcium"].unit == "mg/dL"
    # 9.6176 x 6.194 = 59.5714144 -> 59.5714
    assert derived["ca_x_p"].value == Decimal("59.5714")
    assert derived["ca_x_p"].unit == "mg2/dL2"
    measured = {o.code: o.pk for o in result.observations}
    assert set(derived["corrected_calcium"].inputs.values_list("code", flat=True)) == {"calcium", "albumin"}
    assert set(derived["ca_x_p"].inputs.values_list("pk", flat=True)) == set(measured.values())


def test_derived_values_use_the_latest_inputs_within_the_window_only(enrollment, settings) -> None:
    settings.CAREPATH = {**settings.CAREPATH, "DERIVED_WINDOW_HOURS": 72}
    observation_record(enrollment_id=enrollment.pk, code="albumin", value="3.0", unit="g/dL", actor=None, now=AT)
    later = AT + dt.timedelta(hours=24)
    observation_record(enrollment_id=enrollment.pk, code="albumin", value="3.5", unit="g/dL", actor=None, now=later)
    # Calcium a day later: the newer albumin (3.5) is used -> 9.0 + 0.8 x 0.5 = 9.4.
    result = observation_record(
        enrollment_id=enrollment.pk, code="calcium", value="9.0", unit="mg/dL", actor=None, now=later
    )
    assert [(o.code, o.value) for o in result.derived] == [("corrected_calcium", Decimal("9.4000"))]
    # Four days after the last albumin there is no recent albumin: no corrected calcium, rather than a stale one.
    far = later + dt.timedelta(hours=73)
    result = observation_record(
        enrollment_id=enrollment.pk, code="calcium", value="9.0", unit="mg/dL", actor=None, now=far
    )
    assert result.derived == []


def test_one_bad_value_rejects_the_whole_panel_and_nothing_is_written(enrollment) -> None:
    before = (Observation.objects.count(), Task.objects.count(), Assessment.objects.count(), RuleFiring.objects.count())
    with pytest.raises(InvalidInput, match=r"values\[1\]: unknown unit 'mmol' for phosphate") as exc:
        observations_record(
            enrollment_id=enrollment.pk,
            values=[ObservationInput("calcium", "12", "mg/dL"), ObservationInput("phosphate", "2", "mmol")],
            findings=["sepsis"],
            actor=None,
            now=AT,
        )
    assert "values[1].unit" in exc.value.fields
    with pytest.raises(InvalidInput, match="not physiologically plausible"):
        observation_record(enrollment_id=enrollment.pk, code="bwat_cua", value=44, unit="score", actor=None, now=AT)
    after = (Observation.objects.count(), Task.objects.count(), Assessment.objects.count(), RuleFiring.objects.count())
    assert after == before


def test_an_unknown_finding_or_a_future_time_is_rejected(enrollment) -> None:
    with pytest.raises(InvalidInput, match="unknown finding"):
        observations_record(enrollment_id=enrollment.pk, values=[], findings=["gangrene"], actor=None, now=AT)
    with pytest.raises(InvalidInput, match="in the future"):
        observations_record(
            enrollment_id=enrollment.pk,
            values=[ObservationInput("pain_score", 3, "score", AT + dt.timedelta(hours=1))],
            actor=None,
            now=AT,
        )
    assert not Observation.objects.exists()


def test_pth_without_the_labs_upper_normal_uses_the_documented_default_and_says_so(enrollment) -> None:
    (given,) = observation_record(
        enrollment_id=enrollment.pk, code="pth", value="40", unit="pmol/L", reference_high="7", actor=None, now=AT
    ).observations
    # The upper normal is converted like the value: 7 pmol/L x 9.43 = 66.01 pg/mL.
    assert (given.reference_high, given.reference_high_defaulted) == (Decimal("66.0100"), False)
    (defaulted,) = observation_record(
        enrollment_id=enrollment.pk, code="pth", value="400", unit="pg/mL", actor=None, now=AT
    ).observations
    assert (defaulted.reference_high, defaulted.reference_high_defaulted) == (Decimal(65), True)


def test_only_people_who_can_see_the_enrollment_and_do_clinical_work_can_record(
    enrollment, auditor, other_site
) -> None:
    stranger = UserFactory(roles=["nephrology"], sites=[other_site])
    with pytest.raises(NotFound):
        observation_record(enrollment_id=enrollment.pk, code="inr", value="2", unit="", actor=stranger, now=AT)
    with pytest.raises(NotPermitted):
        observation_record(enrollment_id=enrollment.pk, code="inr", value="2", unit="", actor=auditor, now=AT)
    assert not Observation.objects.exists()


def test_an_ended_enrollment_takes_no_more_clinical_data(enrollment, coordinator) -> None:
    enrollment_complete(enrollment_id=enrollment.pk, actor=coordinator, reason="healed", now=AT)
    with pytest.raises(IllegalTransition, match="completed"):
        observation_record(enrollment_id=enrollment.pk, code="inr", value="2", unit="", actor=coordinator, now=AT)
    assert not Observation.objects.exists() and not Flag.objects.exists()
