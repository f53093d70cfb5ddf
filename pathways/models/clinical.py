"""Clinical data: observations (labs, vitals, scores), assessments, medication changes, flags, rule firings."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from pathways.choices import (
    DerivedCode,
    FlagSeverity,
    MedicationChangeKind,
    MedicationRoute,
    ObservationCode,
    RiskMedication,
    RuleOutcome,
)

ALL_OBSERVATION_CODES = [*ObservationCode.values, *DerivedCode.values]


class Assessment(models.Model):
    """A clinical assessment (wound, pain, response review) with its findings; its values are Observations."""

    enrollment = models.ForeignKey("pathways.Enrollment", on_delete=models.PROTECT, related_name="assessments")
    # Finding values (choices.Finding) observed at this assessment; rules with `event: finding` react to them.
    findings = models.JSONField(default=list, blank=True)
    note = models.TextField(blank=True)
    effective_at = models.DateTimeField()
    recorded_at = models.DateTimeField()
    recorded_by = models.ForeignKey("pathways.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    # The task whose structured completion carried this assessment, if any.
    task = models.ForeignKey(
        "pathways.Task", on_delete=models.PROTECT, null=True, blank=True, related_name="assessments"
    )

    class Meta:
        ordering = ["-effective_at", "-pk"]

    def __str__(self) -> str:
        return f"assessment {self.pk} on enrollment {self.enrollment_id}"


class Observation(models.Model):
    """One measured or derived value in its canonical unit, with what was entered (FHIR Observation)."""

    enrollment = models.ForeignKey("pathways.Enrollment", on_delete=models.PROTECT, related_name="observations")
    code = models.CharField(max_length=32)
    value = models.DecimalField(max_digits=14, decimal_places=4)
    unit = models.CharField(max_length=32)  # always the code's canonical unit
    # As entered, before normalization (auditable: the conversion can be re-checked).
    entered_value = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    entered_unit = models.CharField(max_length=32, blank=True)
    # The lab's upper limit of normal, canonical unit (PTH rules are relative to it).
    reference_high = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    # True when the lab gave none and the documented default was used.
    reference_high_defaulted = models.BooleanField(default=False)
    effective_at = models.DateTimeField()
    recorded_at = models.DateTimeField()
    recorded_by = models.ForeignKey("pathways.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    assessment = models.ForeignKey(
        Assessment, on_delete=models.PROTECT, null=True, blank=True, related_name="observations"
    )
    # The task whose structured completion carried this value, if any.
    task = models.ForeignKey(
        "pathways.Task", on_delete=models.PROTECT, null=True, blank=True, related_name="observations"
    )
    # Derived values (corrected calcium, Ca x P) point at the measured values they were computed from.
    inputs = models.ManyToManyField("self", symmetrical=False, blank=True, related_name="derived_values")
    # A derived value's input ids, sorted and comma-separated ("" for a measured value): part of the identity
    # of a measurement, so a derived value is stored once per effective time and inputs.
    inputs_key = models.CharField(max_length=200, blank=True, default="")
    # The sender's business identifier ("system|value", e.g. a lab accession) when the value came from an
    # interface (FHIR Observation.identifier): a resent result with the same identifier is the same measurement.
    # NULL, not "", when absent: the unique constraint below must not treat every unidentified value as one.
    source_identifier = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001

    class Meta:
        ordering = ["-effective_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(code__in=ALL_OBSERVATION_CODES), name="%(app_label)s_%(class)s_code_valid"
            ),
            # A resent result (same code, value, unit and effective time) is the same measurement; interfaces
            # re-send routinely, and a second row would fire the rules again (issue 12).
            models.UniqueConstraint(
                fields=["enrollment", "code", "effective_at", "value", "unit", "inputs_key"],
                name="%(app_label)s_%(class)s_unique_measurement",
            ),
            models.UniqueConstraint(
                fields=["enrollment", "source_identifier"],
                condition=Q(source_identifier__isnull=False),
                name="%(app_label)s_%(class)s_unique_source_identifier",
            ),
        ]
        indexes = [
            # Rules and derived values read "the latest values of a code for an enrollment".
            models.Index(fields=["enrollment", "code", "effective_at"], name="pathways_obs_enr_code_at"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.value} {self.unit} (observation {self.pk})"


class MedicationChange(models.Model):
    """A risk medication started, changed or stopped for an enrolled patient."""

    enrollment = models.ForeignKey("pathways.Enrollment", on_delete=models.PROTECT, related_name="medication_changes")
    medication = models.CharField(max_length=32, choices=RiskMedication.choices)
    # The drug as ordered (e.g. "calcium acetate 667 mg"), named in the review task.
    drug_name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=MedicationChangeKind.choices)
    # Route of administration; "" when not recorded. Subcutaneous breaks the skin precaution (a rule flags it).
    route = models.CharField(max_length=16, choices=MedicationRoute.choices, blank=True, default="", db_default="")
    note = models.TextField(blank=True)
    effective_at = models.DateTimeField()
    recorded_at = models.DateTimeField()
    recorded_by = models.ForeignKey("pathways.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["-effective_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(medication__in=RiskMedication.values), name="%(app_label)s_%(class)s_medication_valid"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=MedicationChangeKind.values), name="%(app_label)s_%(class)s_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.medication} (medication change {self.pk})"


class Flag(models.Model):
    """A condition raised on an enrollment by a rule; active until a later value is back in range."""

    enrollment = models.ForeignKey("pathways.Enrollment", on_delete=models.PROTECT, related_name="flags")
    code = models.SlugField(max_length=64)
    rule_code = models.SlugField(max_length=64)
    severity = models.CharField(max_length=16, choices=FlagSeverity.choices, default=FlagSeverity.SOFT)
    message = models.CharField(max_length=500)
    source_observation = models.ForeignKey(
        Observation, on_delete=models.PROTECT, null=True, blank=True, related_name="flags_raised"
    )
    raised_at = models.DateTimeField()
    cleared_at = models.DateTimeField(null=True, blank=True)
    cleared_by_observation = models.ForeignKey(
        Observation, on_delete=models.PROTECT, null=True, blank=True, related_name="flags_cleared"
    )

    class Meta:
        ordering = ["-raised_at", "-pk"]
        constraints = [
            # At most one active flag per code: a rule firing again links to it instead of raising another.
            models.UniqueConstraint(
                fields=["enrollment", "code"],
                condition=Q(cleared_at__isnull=True),
                name="%(app_label)s_%(class)s_unique_active_code",
            ),
        ]

    def __str__(self) -> str:
        return f"flag {self.code} on enrollment {self.enrollment_id}"


class RuleFiring(models.Model):
    """One action of a rule that fired: what triggered it and the task, flag or schedule it touched.

    This is the link between an observation and the task a rule created (or linked it to, on dedupe).
    """

    enrollment = models.ForeignKey("pathways.Enrollment", on_delete=models.PROTECT, related_name="rule_firings")
    rule = models.ForeignKey("pathways.Rule", on_delete=models.PROTECT, related_name="firings")
    rule_code = models.SlugField(max_length=64)
    outcome = models.CharField(max_length=20, choices=RuleOutcome.choices)
    observation = models.ForeignKey(
        Observation, on_delete=models.PROTECT, null=True, blank=True, related_name="rule_firings"
    )
    assessment = models.ForeignKey(
        Assessment, on_delete=models.PROTECT, null=True, blank=True, related_name="rule_firings"
    )
    medication_change = models.ForeignKey(
        MedicationChange, on_delete=models.PROTECT, null=True, blank=True, related_name="rule_firings"
    )
    task = models.ForeignKey("pathways.Task", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    flag = models.ForeignKey(Flag, on_delete=models.PROTECT, null=True, blank=True, related_name="firings")
    schedule = models.ForeignKey("pathways.Schedule", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    # Why it fired: the values compared (for audit and for the clinician reading the task).
    data = models.JSONField(default=dict, blank=True)
    fired_at = models.DateTimeField()

    class Meta:
        ordering = ["fired_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(outcome__in=RuleOutcome.values), name="%(app_label)s_%(class)s_outcome_valid"
            ),
        ]
        indexes = [models.Index(fields=["enrollment", "rule_code"], name="pathways_firing_enr_rule")]

    def __str__(self) -> str:
        return f"{self.rule_code} {self.outcome} (firing {self.pk})"


class WoundPhoto(models.Model):
    """A photograph of one lesion taken at a wound assessment (FHIR Media): the cleaned image and its thumbnail.

    The files live in the `wound_photos` storage (settings.STORAGES) under names that carry no patient detail;
    they are never served from the store directly, only through the scoped, audited views. Deleting is soft:
    the row keeps who deleted it and why, and the files stay until the retention period has passed and
    `manage.py purge_wound_photos` removes them (purged_at).
    """

    enrollment = models.ForeignKey("pathways.Enrollment", on_delete=models.PROTECT, related_name="wound_photos")
    # The wound-assessment task the photograph belongs to (its BWAT-CUA score and measurements).
    task = models.ForeignKey("pathways.Task", on_delete=models.PROTECT, related_name="wound_photos")
    assessment = models.ForeignKey(
        Assessment, on_delete=models.PROTECT, null=True, blank=True, related_name="wound_photos"
    )
    # The lesion's label, the same at every assessment ("L1 left thigh"), so its photos line up over time.
    lesion = models.CharField(max_length=64)
    body_site = models.CharField(max_length=200)
    taken_at = models.DateTimeField()
    taken_by = models.ForeignKey("pathways.User", on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()
    # Optional measurements of this lesion, cm (UCUM "cm"), within the bounds of the wound_* observations.
    length_cm = models.DecimalField(max_digits=8, decimal_places=4, null=True, blank=True)
    width_cm = models.DecimalField(max_digits=8, decimal_places=4, null=True, blank=True)
    depth_cm = models.DecimalField(max_digits=8, decimal_places=4, null=True, blank=True)
    note = models.TextField(blank=True)
    # What the upload's content was (image/jpeg, image/png, image/heif) and what is stored after re-encoding.
    detected_type = models.CharField(max_length=32)
    content_type = models.CharField(max_length=32)
    width_px = models.PositiveIntegerField()
    height_px = models.PositiveIntegerField()
    size_bytes = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    # Names in the wound_photos storage ("" once purged).
    image_name = models.CharField(max_length=255)
    thumbnail_name = models.CharField(max_length=255)
    deleted_at = models.DateTimeField(null=True, blank=True)
    deleted_by = models.ForeignKey("pathways.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    delete_reason = models.CharField(max_length=500, blank=True)
    purged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["lesion", "taken_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(deleted_at__isnull=True) | ~Q(delete_reason=""),
                name="%(app_label)s_%(class)s_deleted_with_reason",
            ),
            models.CheckConstraint(
                condition=Q(purged_at__isnull=True) | Q(deleted_at__isnull=False),
                name="%(app_label)s_%(class)s_purged_only_when_deleted",
            ),
        ]
        indexes = [
            # The patient page's timeline: an enrollment's photos by lesion and time.
            models.Index(fields=["enrollment", "lesion", "taken_at"], name="pathways_photo_enr_lesion_at"),
        ]

    def __str__(self) -> str:
        return f"wound photo {self.pk} on enrollment {self.enrollment_id}"
