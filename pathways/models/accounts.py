"""Sign-on: which identity at which provider is which Carepath user (issue 18)."""

from __future__ import annotations

from django.db import models


class ExternalIdentity(models.Model):
    """A user's identity at an OpenID Connect provider: the ID token's (iss, sub) pair, which never changes,
    unlike a username or an e-mail address (OpenID Connect Core 1.0, section 5.7)."""

    user = models.ForeignKey("pathways.User", on_delete=models.PROTECT, related_name="external_identities")
    issuer = models.CharField(max_length=500)
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)
    last_login_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="%(app_label)s_%(class)s_unique_issuer_subject"),
        ]

    def __str__(self) -> str:
        return f"identity {self.pk} of user {self.user_id}"
