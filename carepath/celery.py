"""The Celery app: configuration comes from Django settings (CELERY_* names); the beat schedule is code.

Beat only starts fixed sweeps; the future lives in the database (Schedule.next_due_at, Task rows), never in
ETA/countdown messages, which Redis loses or duplicates around worker crashes (celery#3501, #2599, #4400).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carepath.settings")

app = Celery("carepath")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Every sweep is idempotent and claims rows with SKIP LOCKED, so an overlapping or repeated tick is harmless.
# `expires` drops ticks that waited longer than the interval (worker down): the next tick does the same work,
# so a backlog of stale sweep messages is never replayed after an outage.
# https://docs.celeryq.dev/en/stable/userguide/periodic-tasks.html#entries
_EVERY_MINUTE = 60.0
app.conf.beat_schedule = {
    "materialize-due-occurrences": {
        "task": "carepath.sweep_materialize",
        "schedule": _EVERY_MINUTE,
        "options": {"expires": _EVERY_MINUTE - 5},
    },
    # Session-bound work (a dose at a dialysis session) still open at the end of its window closes as missed.
    "expire-missed-sessions": {
        "task": "carepath.sweep_expire",
        "schedule": _EVERY_MINUTE,
        "options": {"expires": _EVERY_MINUTE - 5},
    },
    "escalate-overdue-tasks": {
        "task": "carepath.sweep_escalate",
        "schedule": _EVERY_MINUTE,
        "options": {"expires": _EVERY_MINUTE - 5},
    },
    "remind-due-soon": {
        "task": "carepath.sweep_remind",
        "schedule": _EVERY_MINUTE,
        "options": {"expires": _EVERY_MINUTE - 5},
    },
    # The e-mail outbox: whatever the on-commit fast path could not queue (broker down) or failed to send.
    "send-unsent-email": {
        "task": "carepath.sweep_email",
        "schedule": _EVERY_MINUTE,
        "options": {"expires": _EVERY_MINUTE - 5},
    },
}
