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


class ServiceAccount(models.Model):
    """Marks a user as a non-person account (a lab interface, an EHR): it has no password and signs in with API
    tokens only. Its roles and sites bound what its tokens can ever reach."""

    user = models.OneToOneField("pathways.User", on_delete=models.PROTECT, related_name="service_account")
    description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey("pathways.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+")

    def __str__(self) -> str:
        return f"service account {self.user_id}"


class ApiToken(models.Model):
    """An API token: stored as the SHA-256 of the key (the key is shown once, when issued), limited to an
    allow-list of operations (TokenScope values), with an expiry; revoked rather than deleted."""

    user = models.ForeignKey("pathways.User", on_delete=models.PROTECT, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    # The key's first characters, to tell tokens apart in lists and logs; never enough to use it.
    prefix = models.CharField(max_length=12)
    key_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    # The token this one replaced (rotation).
    rotated_from = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="rotated_to"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(expires_at__gt=models.F("created_at")),
                name="%(app_label)s_%(class)s_expires_after_creation",
            ),
        ]

    def __str__(self) -> str:
        return f"token {self.pk} ({self.prefix}…)"
