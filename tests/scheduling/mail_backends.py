"""A test e-mail backend whose SMTP server is down: Django's locmem backend, failing on purpose."""

from __future__ import annotations

import smtplib

from django.core.mail.backends.locmem import EmailBackend


class DownSMTPBackend(EmailBackend):
    def send_messages(self, email_messages):  # type: ignore[no-untyped-def]
        raise smtplib.SMTPServerDisconnected("connection unexpectedly closed (test)")
