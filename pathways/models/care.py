"""Sites, staff, patients, enrollments and care teams."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q

from pathways.choices import (
    LIVE_ENROLLMENT_STATUSES,
    DiagnosisStatus,
    DialysisModality,
    EnrollmentEventKind,
    EnrollmentStatus,
    Role,
    Sex,
)


class Site(models.Model):
    """A campus with its own timezone; patients belong to one, staff are scoped to some."""

    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    timezone = models.CharField(max_length=64, help_text="IANA timezone name, e.g. America/Chicago")

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code

    @property
    def tzinfo(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class User(AbstractUser):
    """A member of staff. `roles` holds Role values; `sites` scopes everything the user sees."""

    roles = models.JSONField(default=list, blank=True)
    sites = models.ManyToManyField(Site, related_name="staff", blank=True)


class Patient(models.Model):
    """A (synthetic, in this repository) patient at one site."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="patients")
    mrn = models.CharField("medical record number", max_length=64)
    given_name = models.CharField(max_length=100)
    family_name = models.CharField(max_length=100)
    birth_date = models.DateField()
    sex = models.CharField(max_length=16, choices=Sex.choices, default=Sex.UNKNOWN)
    dialysis_modality = models.CharField(max_length=16, choices=DialysisModality.choices)
    # Weekday numbers, Monday = 0 (e.g. [0, 2, 4] for Mon/Wed/Fri); empty unless on in-centre dialysis.
    dialysis_days = models.JSONField(default=list, blank=True)
    # Local (site) wall-clock start of the dialysis session; dialysis-day tasks are due around it.
    dialysis_session_time = models.TimeField(null=True, blank=True)
    risk_factors = models.JSONField(default=list, blank=True)
    risk_medications = models.JSONField(default=list, blank=True)
    # Therapy values the patient is taking now (FHIR MedicationStatement, status active); rules test them.
    current_therapies = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["site", "mrn"]
        constraints = [
            models.UniqueConstraint(fields=["site", "mrn"], name="%(app_label)s_%(class)s_unique_mrn_per_site"),
        ]

    def __str__(self) -> str:
        # Identifiers only: names never reach logs through str().
        return f"patient {self.pk}"


class Enrollment(models.Model):
    """A patient on a pinned pathway template version (FHIR CarePlan)."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="enrollments")
    template = models.ForeignKey("pathways.PathwayTemplate", on_delete=models.PROTECT, related_name="enrollments")
    # Copied from the template so the database can enforce one live enrollment per pathway.
    pathway_slug = models.SlugField(max_length=64)
    status = models.CharField(max_length=16, choices=EnrollmentStatus.choices, default=EnrollmentStatus.ACTIVE)
    # Provisional (suspected): only workup templates apply; recording the diagnosis confirms or refutes it.
    # db_default: rows written by bulk COPY (the bench) or before this field existed are direct treatment.
    diagnosis_status = models.CharField(
        max_length=16,
        choices=DiagnosisStatus.choices,
        default=DiagnosisStatus.CONFIRMED,
        db_default=DiagnosisStatus.CONFIRMED,
    )
    # When the diagnosis was confirmed or ruled out (null while suspected, and for direct treatment enrollments).
    diagnosis_recorded_at = models.DateTimeField(null=True, blank=True)
    coordinator = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="coordinated_enrollments"
    )
    enrolled_at = models.DateTimeField()
    enrolled_by = models.ForeignKey(User, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    held_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.TextField(blank=True)
    # Medications at enrollment, as evaluated for applicability (the patient record may change later).
    medications_at_enrollment = models.JSONField(default=list, blank=True)
    risk_factors_at_enrollment = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-enrolled_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "pathway_slug"],
                condition=Q(status__in=LIVE_ENROLLMENT_STATUSES),
                name="%(app_label)s_%(class)s_unique_live_per_patient_pathway",
            ),
            models.CheckConstraint(
                condition=Q(status__in=EnrollmentStatus.values),
                name="%(app_label)s_%(class)s_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(diagnosis_status__in=DiagnosisStatus.values),
                name="%(app_label)s_%(class)s_diagnosis_status_valid",
            ),
        ]
        indexes = [models.Index(fields=["status", "patient"], name="pathways_enr_status_patient")]

    def __str__(self) -> str:
        return f"enrollment {self.pk} ({self.pathway_slug})"


class CareTeamMember(models.Model):
    """A user serving in a role on one enrollment's care team for a period (open-ended while period_end is null)."""

    enrollment = models.ForeignKey(Enrollment, on_delete=models.CASCADE, related_name="care_team")
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="care_team_memberships")
    role = models.CharField(max_length=32, choices=Role.choices)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["enrollment", "role", "period_start"]
        constraints = [
            models.UniqueConstraint(
                fields=["enrollment", "user", "role"],
                condition=Q(period_end__isnull=True),
                name="%(app_label)s_%(class)s_unique_current_membership",
            ),
        ]
        indexes = [
            # A user's live memberships with their roles, read index-only: where every task list of a specialist
            # starts (selectors.access, issue 15).
            models.Index(
                fields=["user", "enrollment", "role"],
                name="pathways_ctm_user_enr_role",
                condition=Q(period_end__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.role} on enrollment {self.enrollment_id}"


class EnrollmentEvent(models.Model):
    """Append-only record of an enrollment's lifecycle and care-team changes."""

    enrollment = models.ForeignKey(Enrollment, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=32, choices=EnrollmentEventKind.choices)
    at = models.DateTimeField()
    actor = models.ForeignKey(User, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    reason = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.kind} on enrollment {self.enrollment_id}"
