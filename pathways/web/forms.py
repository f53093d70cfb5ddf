"""Dashboard forms: the login form (through the same lockout and audit as the token endpoint) and filters."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm

from pathways.choices import AuditAction, AuditOutcome
from pathways.services.auth import LoginFailed, LoginLocked, auth_login
from pathways.web.fields import BoundedDateField, BoundedDateTimeField, StrictIntegerField


class LockoutAuthenticationForm(AuthenticationForm):
    """Django's login form, but the password is checked by pathways.services.auth.auth_login: failures count
    towards the lockout (django-axes) and every attempt is audited, as for POST /api/v1/auth/token/."""

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is not None and password and self.request is not None:
            try:
                user = auth_login(request=self.request, username=username, password=password)
            except LoginLocked as exc:
                raise forms.ValidationError(exc.message, code="locked") from None
            except LoginFailed:
                raise self.get_invalid_login_error() from None
            self.user_cache = user
            self.confirm_login_allowed(user)
        return self.cleaned_data


class WindowForm(forms.Form):
    """The reporting window of the overview (dates, UTC; end exclusive)."""

    start = BoundedDateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = BoundedDateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))


class AuditFilterForm(forms.Form):
    actor = StrictIntegerField(required=False, label="Actor id")
    patient = StrictIntegerField(required=False, label="Patient id")
    entity_type = forms.CharField(required=False, max_length=64)
    action = forms.ChoiceField(required=False, choices=[("", "any"), *AuditAction.choices])
    outcome = forms.ChoiceField(required=False, choices=[("", "any"), *AuditOutcome.choices])
    since = BoundedDateTimeField(required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    until = BoundedDateTimeField(required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
