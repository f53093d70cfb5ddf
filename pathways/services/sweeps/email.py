"""The e-mail outbox sweep: every notification whose e-mail is unsent and retryable is sent, once.

The per-id Celery task queued on commit is only the fast path; this sweep is what makes a broker outage delay
e-mail instead of losing it (issue 12, section 5). It runs on the `email` queue, beside the per-id tasks, so a
backlog of e-mail never delays the scheduling sweeps (docs/operations.md, "Queues").
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Q
from django.utils import timezone

from pathways.models import Notification
from pathways.services.notifications import notification_send_email
from pathways.services.sweeps._batch import SweepReport, run_batches, setting


def notifications_email_unsent(
    *,
    now: dt.datetime | None = None,
    batch_size: int | None = None,
    max_seconds: float | None = None,
    grace_seconds: int | None = None,
) -> SweepReport:
    """Send the e-mail of every retryable unsent notification, oldest first; returns the sweep's report.

    Retryable: `emailed_at` unset, fewer than EMAIL_MAX_ATTEMPTS attempts, `email_retry_at` (the backoff after
    a failure) reached, an active recipient with an address, and older than `grace_seconds`
    (EMAIL_SWEEP_GRACE_SECONDS, default 60), which leaves fresh rows to the per-id task queued on commit.
    Each row is claimed with SELECT ... FOR UPDATE SKIP LOCKED by notification_send_email, which sends it only
    while `emailed_at` is unset, so concurrent sweeps and per-id tasks share the work and never send twice.
    A failure is counted on the row (report.failed holds its id) and retried after its backoff; the run goes on.
    details: sent, busy (held by another sender), skipped (sent meanwhile or no longer addressable).
    """
    now = now or timezone.now()
    size = batch_size or setting("SWEEP_BATCH_SIZE")
    grace = dt.timedelta(seconds=setting("EMAIL_SWEEP_GRACE_SECONDS") if grace_seconds is None else grace_seconds)
    report = SweepReport(name="email", as_of=now, details={"sent": 0, "busy": 0, "skipped": 0})
    after: tuple[dt.datetime, int] | None = None

    def batch() -> int:
        nonlocal after
        qs = Notification.objects.filter(
            Q(email_retry_at__isnull=True) | Q(email_retry_at__lte=now),
            emailed_at__isnull=True,
            email_attempts__lt=setting("EMAIL_MAX_ATTEMPTS"),
            created_at__lte=now - grace,
            user__is_active=True,
            user__email__gt="",
        )
        if after is not None:
            qs = qs.filter(Q(created_at__gt=after[0]) | Q(created_at=after[0], pk__gt=after[1]))
        rows = list(qs.order_by("created_at", "pk").values_list("created_at", "pk")[:size])
        for _, pk in rows:
            try:
                outcome = notification_send_email(notification_id=pk, now=now, skip_locked=True)
            except Exception:  # counted on the row and logged by the service; the next tick retries it
                report.failed.append(pk)
                continue
            key = outcome if outcome in ("sent", "busy") else "skipped"
            report.details[key] += 1
        if rows:
            after = rows[-1]
        return len(rows)

    return run_batches(report, batch_size=size, max_seconds=max_seconds, batch=batch)
