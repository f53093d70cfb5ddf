"""Enumerations shared by models, services, content files and the API."""

from django.db import models


class Prong(models.TextChoices):
    WOUND_CARE = "wound_care", "Intensive wound care"
    OXYGENATION_BLOOD_FLOW = "oxygenation_blood_flow", "Restoring oxygenation and blood flow"
    CALCIUM_REDUCTION = "calcium_reduction", "Decreasing calcium deposits"
    # Work that belongs to no single prong: huddles, goals of care, pain, nutrition.
    SUPPORT = "support", "Supporting care"


class Role(models.TextChoices):
    """Every role a user can hold. Specialist roles can own tasks; the others cannot."""

    COORDINATOR = "coordinator", "Care coordinator"
    AUDITOR = "auditor", "Auditor"
    ADMIN = "admin", "Administrator"
    NEPHROLOGY = "nephrology", "Nephrology"
    DIALYSIS_NURSING = "dialysis_nursing", "Dialysis nursing"
    DERMATOLOGY = "dermatology", "Dermatology"
    WOUND_NURSING = "wound_nursing", "Wound nursing"
    PLASTIC_SURGERY = "plastic_surgery", "Plastic/burn surgery"
    ENDOCRINOLOGY = "endocrinology", "Endocrinology/endocrine surgery"
    INFECTIOUS_DISEASE = "infectious_disease", "Infectious disease"
    HYPERBARIC_MEDICINE = "hyperbaric_medicine", "Hyperbaric medicine"
    PHARMACY = "pharmacy", "Pharmacy"
    PAIN_PALLIATIVE = "pain_palliative", "Pain/palliative care"
    DIETETICS = "dietetics", "Dietetics"
    HEMATOLOGY = "hematology", "Hematology"


NON_SPECIALIST_ROLES = frozenset({Role.COORDINATOR, Role.AUDITOR, Role.ADMIN})
SPECIALIST_ROLES = frozenset(r for r in Role if r not in NON_SPECIALIST_ROLES)


class TemplateStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"  # the version new enrollments are applied from
    RETIRED = "retired", "Retired"  # kept for enrollments pinned to it


class DialysisModality(models.TextChoices):
    HEMODIALYSIS = "HD", "Hemodialysis"
    PERITONEAL = "PD", "Peritoneal dialysis"
    TRANSPLANT = "transplant", "Kidney transplant"
    NONE = "none", "Not on dialysis"


class Sex(models.TextChoices):
    FEMALE = "female", "Female"
    MALE = "male", "Male"
    OTHER = "other", "Other"
    UNKNOWN = "unknown", "Unknown"


class Weekday(models.IntegerChoices):
    """ISO-like numbering with Monday = 0, matching datetime.weekday() and dateutil's MO..SU."""

    MON = 0, "Monday"
    TUE = 1, "Tuesday"
    WED = 2, "Wednesday"
    THU = 3, "Thursday"
    FRI = 4, "Friday"
    SAT = 5, "Saturday"
    SUN = 6, "Sunday"


WEEKDAY_CODES = {"MO": 0, "TU": 1, "WE": 2, "TH": 3, "FR": 4, "SA": 5, "SU": 6}


class RiskMedication(models.TextChoices):
    WARFARIN = "warfarin", "Warfarin / vitamin K antagonist"
    CALCIUM_BINDER = "calcium_binder", "Calcium-based phosphate binder"
    VITAMIN_D = "vitamin_d", "Vitamin D analogue (e.g. calcitriol)"
    IRON = "iron", "Iron"
    CORTICOSTEROID = "corticosteroid", "Systemic corticosteroid"


class Therapy(models.TextChoices):
    """Current therapies a rule can test (clinical reference, "Current therapies matter to rules").

    Recorded per patient as a list, in the sense of FHIR MedicationStatement with status ``active``: the patient
    is taking it now. Stopping one removes it.
    """

    CINACALCET = "cinacalcet", "Cinacalcet (calcimimetic)"
    APIXABAN = "apixaban", "Apixaban (anticoagulation)"
    SODIUM_THIOSULFATE = "sodium_thiosulfate", "Sodium thiosulfate"
    ALTEPLASE = "alteplase", "Low-dose tPA (alteplase)"
    IMMUNOSUPPRESSANT = "immunosuppressant", "Immunosuppressive drugs (kidney transplant)"


class RiskFactor(models.TextChoices):
    FEMALE_SEX = "female_sex", "Female sex"
    OBESITY = "obesity", "Obesity"
    LONG_TERM_DIALYSIS = "long_term_dialysis", "Long-term dialysis"
    KIDNEY_TRANSPLANT = "kidney_transplant", "Kidney transplant"
    DIABETES = "diabetes", "Diabetes"
    HYPERPARATHYROIDISM = "hyperparathyroidism", "Hyperparathyroidism"
    LOW_ALBUMIN = "low_albumin", "Low albumin"
    CLOTTING_ABNORMALITY = "clotting_abnormality", "Protein C/S deficiency or other clotting abnormality"
    ALUMINIUM = "aluminium", "Aluminium exposure"


class EnrollmentStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    ON_HOLD = "on-hold", "On hold"  # schedules paused; missed occurrences recorded, not backfilled
    COMPLETED = "completed", "Completed"
    REVOKED = "revoked", "Revoked"  # ended early (e.g. entered in error, transferred)


LIVE_ENROLLMENT_STATUSES = (EnrollmentStatus.ACTIVE, EnrollmentStatus.ON_HOLD)


class PathwayStage(models.TextChoices):
    """The stage a task template belongs to (content key `stage`); an enrollment's stage follows its diagnosis."""

    WORKUP = "workup", "Workup of suspected calciphylaxis"
    TREATMENT = "treatment", "Treatment"


class DiagnosisStatus(models.TextChoices):
    """FHIR Condition.verificationStatus of calciphylaxis on an enrollment (a subset)."""

    PROVISIONAL = "provisional", "Suspected (workup under way)"
    CONFIRMED = "confirmed", "Confirmed"
    REFUTED = "refuted", "Ruled out"


class EnrollmentEventKind(models.TextChoices):
    ENROLLED = "enrolled", "Enrolled"
    DIAGNOSIS_CONFIRMED = "diagnosis_confirmed", "Diagnosis confirmed"
    DIAGNOSIS_REFUTED = "diagnosis_refuted", "Diagnosis ruled out"
    HELD = "held", "Put on hold"
    RESUMED = "resumed", "Resumed"
    COMPLETED = "completed", "Completed"
    REVOKED = "revoked", "Revoked"
    CARE_TEAM_ADDED = "care_team_added", "Care team member added"
    CARE_TEAM_ENDED = "care_team_ended", "Care team membership ended"
    # Re-planning after a change to the patient (docs/scheduling.md, "Re-planning"); each carries its reason.
    TEMPLATE_STARTED = "template_started", "Task template started (now applies)"
    TEMPLATE_ENDED = "template_ended", "Task template ended (no longer applies)"
    SCHEDULE_REPLANNED = "schedule_replanned", "Schedule re-planned"
    # Moved to another version of its pathway; the event's data holds both versions and the applied plan.
    MIGRATED = "migrated", "Moved to another pathway version"


class RecurrenceKind(models.TextChoices):
    ONCE = "once", "Once, at the first-due time"
    INTERVAL = "interval", "Every N hours or days"
    WEEKDAYS = "weekdays", "On given weekdays at a local time"
    DIALYSIS_DAYS = "dialysis_days", "On the patient's dialysis days"
    AFTER_COMPLETION = "after_completion", "N hours after the last completion"
    # Never scheduled: created only by a rule or by hand.
    ON_TRIGGER = "on_trigger", "Only when a rule fires"


class ScheduleStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"  # enrollment on hold, or a safety rule held it
    FINISHED = "finished", "Finished"  # bound reached, or enrollment ended


class TaskStatus(models.TextChoices):
    """A subset of FHIR Task.status. Overdue is derived (open and past due_at), not a status."""

    REQUESTED = "requested", "Requested"  # in a role pool, or assigned but not accepted
    ACCEPTED = "accepted", "Accepted"
    IN_PROGRESS = "in-progress", "In progress"
    ON_HOLD = "on-hold", "On hold"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"
    # Session-bound work (a dose at a dialysis session) not done by the end of its window: closed by the expiry
    # sweep, never by hand. Not a FHIR code: FHIR gets "failed" with statusReason "missed" (docs/fhir.md).
    MISSED = "missed", "Missed"
    ENTERED_IN_ERROR = "entered-in-error", "Entered in error"


OPEN_TASK_STATUSES = (
    TaskStatus.REQUESTED,
    TaskStatus.ACCEPTED,
    TaskStatus.IN_PROGRESS,
    TaskStatus.ON_HOLD,
)
TERMINAL_TASK_STATUSES = (
    TaskStatus.COMPLETED,
    TaskStatus.CANCELLED,
    TaskStatus.FAILED,
    TaskStatus.MISSED,
    TaskStatus.ENTERED_IN_ERROR,
)


class Priority(models.TextChoices):
    """FHIR request priority, lowest to highest."""

    ROUTINE = "routine", "Routine"
    URGENT = "urgent", "Urgent"
    ASAP = "asap", "ASAP"
    STAT = "stat", "STAT"


PRIORITY_RANK = {Priority.ROUTINE: 0, Priority.URGENT: 1, Priority.ASAP: 2, Priority.STAT: 3}


class TaskEventKind(models.TextChoices):
    CREATED = "created", "Created"
    ASSIGNED = "assigned", "Assigned"
    UNASSIGNED = "unassigned", "Returned to the pool"
    TRANSITIONED = "transitioned", "Status changed"
    ESCALATED = "escalated", "Escalated"
    UNBLOCKED = "unblocked", "Prerequisites met"
    UPDATED = "updated", "Updated"


class NotificationKind(models.TextChoices):
    ASSIGNED = "assigned", "Assigned to you"
    DUE_SOON = "due_soon", "Due soon"
    OVERDUE = "overdue", "Overdue"
    ESCALATED = "escalated", "Escalated"


class ObservationCode(models.TextChoices):
    """What can be recorded as an observation; units are normalized to the canonical unit on entry."""

    CALCIUM = "calcium", "Calcium (mg/dL)"
    PHOSPHATE = "phosphate", "Phosphate (mg/dL)"
    ALBUMIN = "albumin", "Albumin (g/dL)"
    PTH = "pth", "Parathyroid hormone (pg/mL)"
    ALKALINE_PHOSPHATASE = "alkaline_phosphatase", "Alkaline phosphatase (U/L)"
    ALUMINIUM = "aluminium", "Aluminium (ng/mL)"
    BICARBONATE = "bicarbonate", "Bicarbonate (mmol/L)"
    ANION_GAP = "anion_gap", "Anion gap (mmol/L)"
    WBC = "wbc", "White blood cells (10^9/L)"
    CRP = "crp", "C-reactive protein (mg/L)"
    TEMPERATURE = "temperature", "Temperature (degrees C)"
    INR = "inr", "INR"
    SYSTOLIC_BP = "systolic_bp", "Systolic blood pressure (mmHg)"
    PAIN_SCORE = "pain_score", "Pain score (0-10)"
    BWAT_CUA = "bwat_cua", "BWAT-CUA score (8-40)"
    WOUND_LENGTH = "wound_length", "Wound length (cm)"
    WOUND_WIDTH = "wound_width", "Wound width (cm)"
    WOUND_DEPTH = "wound_depth", "Wound depth (cm)"


class DerivedCode(models.TextChoices):
    CORRECTED_CALCIUM = "corrected_calcium", "Corrected calcium (mg/dL)"
    CA_X_P = "ca_x_p", "Calcium x phosphate product (mg2/dL2)"


class Finding(models.TextChoices):
    """Clinical findings recorded with an assessment; rules react to them."""

    NEW_ULCER = "new_ulcer", "New ulcer"
    NEW_LESION = "new_lesion", "New lesion"
    SEPSIS = "sepsis", "Sepsis"
    UNCONTROLLED_PAIN = "uncontrolled_pain", "Uncontrolled pain"
    PURULENCE = "purulence", "Purulence"
    WET_WOUND = "wet_wound", "Wet wound"
    DRAINING = "draining", "Draining wound"
    MALODOROUS = "malodorous", "Malodorous wound"
    VOMITING = "vomiting", "Vomiting"
    EAR_PAIN = "ear_pain", "Ear pain"
    SINUS_PAIN = "sinus_pain", "Sinus pain"
    CLAUSTROPHOBIA = "claustrophobia", "Claustrophobia"
    PROGRESSION = "progression", "Progression despite treatment"
    NO_IMPROVEMENT = "no_improvement", "No improvement"
    WEIGHT_LOSS = "weight_loss", "Weight loss"


class MedicationRoute(models.TextChoices):
    """Route of administration (the common FHIR Dosage.route concepts; "" when not recorded)."""

    ORAL = "oral", "Oral"
    INTRAVENOUS = "intravenous", "Intravenous"
    SUBCUTANEOUS = "subcutaneous", "Subcutaneous"
    INTRAMUSCULAR = "intramuscular", "Intramuscular"
    TOPICAL = "topical", "Topical"
    OTHER = "other", "Other"


class MedicationChangeKind(models.TextChoices):
    STARTED = "started", "Started (new order)"
    DOSE_CHANGED = "dose_changed", "Dose changed"
    STOPPED = "stopped", "Stopped"


class FlagSeverity(models.TextChoices):
    SOFT = "soft", "Soft (for awareness)"
    ALERT = "alert", "Alert"


class RuleAction(models.TextChoices):
    """What a rule does when its condition holds: the key of each entry in a rule's `then` list."""

    CREATE_TASK = "create_task", "Create a task from one of the pathway's templates"
    AD_HOC_TASK = "ad_hoc_task", "Create an ad-hoc task"
    FLAG = "flag", "Raise a flag"
    HOLD_SCHEDULE = "hold_schedule", "Hold a template's schedule (safety hold)"


class RuleOutcome(models.TextChoices):
    """What one action of a fired rule did."""

    TASK_CREATED = "task_created", "Task created"
    TASK_LINKED = "task_linked", "Linked to the rule's open task (dedupe)"
    FLAG_RAISED = "flag_raised", "Flag raised"
    FLAG_LINKED = "flag_linked", "Linked to the active flag (dedupe)"
    SCHEDULE_HELD = "schedule_held", "Schedule held"
    NOTHING_TO_HOLD = "nothing_to_hold", "No active schedule to hold"


class AuditAction(models.TextChoices):
    """FHIR AuditEvent.action (http://hl7.org/fhir/audit-event-action)."""

    CREATE = "C", "Create"
    READ = "R", "Read/view/print/query"
    UPDATE = "U", "Update"
    DELETE = "D", "Delete"
    EXECUTE = "E", "Execute (login, search, report)"


class AuditOutcome(models.TextChoices):
    """FHIR AuditEvent.outcome (http://hl7.org/fhir/audit-event-outcome). Denied requests are failures."""

    SUCCESS = "0", "Success"
    MINOR_FAILURE = "4", "Minor failure"  # invalid input, not found, conflict
    SERIOUS_FAILURE = "8", "Serious failure"  # denied: not authenticated, not permitted, locked out
    MAJOR_FAILURE = "12", "Major failure"  # server error


class TokenScope(models.TextChoices):
    """Operations an API token may be limited to ("<resource>:<read|write>"; issue 18). A read is GET/HEAD/
    OPTIONS, a write anything else. Person tokens carry ALL: whatever the person's roles allow."""

    ALL = "*", "Everything the account's roles allow"
    OBSERVATIONS_READ = "observations:read", "Read observations"
    OBSERVATIONS_WRITE = "observations:write", "Record observations (lab results, assessments)"
    TASKS_READ = "tasks:read", "Read tasks and queues"
    TASKS_WRITE = "tasks:write", "Act on tasks"
    PATIENTS_READ = "patients:read", "Read patients"
    PATIENTS_WRITE = "patients:write", "Register and update patients"
    ENROLLMENTS_READ = "enrollments:read", "Read enrollments, care teams and flags"
    ENROLLMENTS_WRITE = "enrollments:write", "Enrol, hold, resume, manage care teams"
    PATHWAYS_READ = "pathways:read", "Read pathway templates"
    REPORTS_READ = "reports:read", "Read adherence reports and the audit log"
