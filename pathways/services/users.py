"""Provisioning staff accounts."""

from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from pathways.choices import Role
from pathways.errors import Conflict, InvalidInput
from pathways.models import Site, User


@transaction.atomic
def user_create(
    *,
    username: str,
    email: str,
    roles: list[str],
    site_codes: list[str],
    password: str,
    first_name: str = "",
    last_name: str = "",
    validate: bool = True,
) -> User:
    """Create a staff user with roles and sites; every problem is reported and nothing is written."""
    problems: dict[str, list[str]] = {}
    if not username.strip():
        problems["username"] = ["is required"]
    elif User.objects.filter(username=username).exists():
        raise Conflict(f"a user named {username!r} already exists", fields={"username": ["already exists"]})
    unknown_roles = [r for r in roles if r not in Role.values]
    if not roles:
        problems["roles"] = ["at least one role is required"]
    elif unknown_roles:
        problems["roles"] = [f"unknown role(s) {', '.join(unknown_roles)}; choose from {', '.join(Role.values)}"]
    sites = list(Site.objects.filter(code__in=site_codes))
    unknown_sites = sorted(set(site_codes) - {s.code for s in sites})
    if not site_codes:
        problems["sites"] = ["at least one site is required"]
    elif unknown_sites:
        known = ", ".join(Site.objects.values_list("code", flat=True)) or "none yet"
        problems["sites"] = [f"unknown site(s) {', '.join(unknown_sites)}; known sites: {known}"]
    if validate and not problems:
        try:
            validate_password(password, User(username=username, email=email))
        except ValidationError as exc:
            problems["password"] = list(exc.messages)
    if problems:
        message = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in problems.items())
        raise InvalidInput(message, fields=problems)
    user = User.objects.create_user(
        username=username,
        email=email,
        password=password,
        first_name=first_name,
        last_name=last_name,
        roles=sorted(set(roles)),
        is_staff=Role.ADMIN in roles,
        is_superuser=Role.ADMIN in roles,
    )
    user.sites.set(sites)
    return user
