"""The beat sweeps, one per module, over one batch loop (_batch.py). Celery beat runs each every minute;
`manage.py run_scheduler --as-of` runs them by hand (docs/scheduling.md).

- `schedules_materialize_due` (materialize.py): due occurrences within the look-ahead horizon become tasks;
- `tasks_expire_missed` (expire.py): session-bound work still open at the end of its window closes as missed;
- `tasks_escalate_overdue` (escalate.py): overdue work is escalated once, then its priority raised;
- `tasks_remind_due_soon` (remind.py): workers hear about available work that comes due soon;
- `notifications_email_unsent` (email.py): the e-mail outbox, sent once each (on the `email` queue).

Each sweep claims rows in bounded batches (`SELECT ... FOR UPDATE SKIP LOCKED` where it writes to the rows),
commits each batch on its own, and is safe to run twice or concurrently: unique constraints and level
markers, not timing, prevent duplicates.
"""

from pathways.services.sweeps._batch import WORKABLE_STATUSES, SweepReport
from pathways.services.sweeps.email import notifications_email_unsent
from pathways.services.sweeps.escalate import tasks_escalate_overdue
from pathways.services.sweeps.expire import tasks_expire_missed
from pathways.services.sweeps.materialize import schedules_materialize_due
from pathways.services.sweeps.remind import tasks_remind_due_soon

__all__ = [
    "WORKABLE_STATUSES",
    "SweepReport",
    "notifications_email_unsent",
    "schedules_materialize_due",
    "tasks_escalate_overdue",
    "tasks_expire_missed",
    "tasks_remind_due_soon",
]
