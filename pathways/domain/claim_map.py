"""Mapping an identity provider's claims to Carepath roles and sites: data, not code (issue 18).

The mapping is a YAML file named by OIDC_CLAIM_MAP_FILE (README, "Connecting to a hospital's identity
provider"). Its shape:

    claim: groups                 # the claim that lists the user's groups (a list of strings, or one string)
    groups:
      carepath-coordinators-north:    # a value of that claim
        roles: [coordinator]          # Role values (pathways.choices.Role)
        sites: [north]                # Site codes
      carepath-wound-nursing:
        roles: [wound_nursing]

A user's roles and sites are the union over every listed group they are in; unlisted groups are ignored.
The claim named in the file wins over OIDC_CLAIM_GROUPS, so one file describes one provider completely.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pathways.choices import Role
from pathways.errors import InvalidInput


@dataclass(frozen=True)
class Grant:
    """What one group gives: Role values and Site codes."""

    roles: frozenset[str] = frozenset()
    sites: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ClaimMap:
    """The parsed mapping file. `claim` is the claim name; `groups` maps a claim value to its Grant."""

    claim: str
    groups: Mapping[str, Grant] = field(default_factory=dict)

    @classmethod
    def from_data(cls, data: Any, *, default_claim: str = "groups", source: str = "claim map") -> ClaimMap:
        """Validate a parsed mapping (the shape in the module docstring). Raises InvalidInput naming the
        group and the field of every problem; nothing is partly accepted."""
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise InvalidInput(f"{source}: expected a mapping with 'claim' and 'groups'")
        problems: dict[str, list[str]] = {}
        unknown_keys = sorted(set(data) - {"claim", "groups"})
        if unknown_keys:
            problems["keys"] = [f"unknown key(s) {', '.join(unknown_keys)}"]
        claim = data.get("claim", default_claim)
        if not isinstance(claim, str) or not claim.strip():
            problems["claim"] = ["must be a claim name"]
        groups: dict[str, Grant] = {}
        raw_groups = data.get("groups") or {}
        if not isinstance(raw_groups, dict):
            problems["groups"] = ["must map group names to {roles, sites}"]
            raw_groups = {}
        for name, grant in raw_groups.items():
            where = f"groups.{name}"
            if not isinstance(grant, dict) or set(grant) - {"roles", "sites"}:
                problems[where] = ["must be a mapping with 'roles' and/or 'sites' only"]
                continue
            roles = grant.get("roles") or []
            sites = grant.get("sites") or []
            if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
                problems[f"{where}.roles"] = ["must be a list of role names"]
                continue
            if not isinstance(sites, list) or not all(isinstance(s, str) for s in sites):
                problems[f"{where}.sites"] = ["must be a list of site codes"]
                continue
            unknown = sorted(set(roles) - set(Role.values))
            if unknown:
                problems[f"{where}.roles"] = [
                    f"unknown role(s) {', '.join(unknown)}; choose from {', '.join(Role.values)}"
                ]
                continue
            groups[str(name)] = Grant(roles=frozenset(roles), sites=frozenset(sites))
        if problems:
            message = "; ".join(f"{key}: {' '.join(msgs)}" for key, msgs in problems.items())
            raise InvalidInput(f"{source}: {message}", fields=problems)
        return cls(claim=str(claim), groups=groups)

    @classmethod
    def from_file(cls, path: str | Path | None, *, default_claim: str = "groups") -> ClaimMap:
        """Read and validate the YAML file at `path`; no path means an empty map (nobody gets a role).
        Raises InvalidInput for a missing file or a bad shape."""
        if not path:
            return cls(claim=default_claim)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"claim map {path}: cannot be read ({exc.strerror})") from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidInput(f"claim map {path}: not valid YAML") from exc
        return cls.from_data(data, default_claim=default_claim, source=f"claim map {path}")

    def grant_for(self, claims: Mapping[str, Any]) -> Grant:
        """The union of the grants of every group listed in the claim; a claim that is missing, or neither a
        string nor a list of strings, grants nothing."""
        value = claims.get(self.claim)
        if isinstance(value, str):
            values = [value]
        elif isinstance(value, list):
            values = [v for v in value if isinstance(v, str)]
        else:
            values = []
        roles: set[str] = set()
        sites: set[str] = set()
        for group in values:
            grant = self.groups.get(group)
            if grant is not None:
                roles |= grant.roles
                sites |= grant.sites
        return Grant(roles=frozenset(roles), sites=frozenset(sites))
