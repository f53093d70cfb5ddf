"""OperationOutcome: every FHIR error answer, and the informational notes of a successful write."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fhir.resources.R4B.operationoutcome import OperationOutcome, OperationOutcomeIssue
from pydantic import ValidationError


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome.issue: severity (fatal|error|warning|information), an issue-type code
    (http://hl7.org/fhir/issue-type), a human message and the FHIRPath of the element concerned."""

    code: str
    diagnostics: str
    expression: Sequence[str] = ()
    severity: str = "error"

    def at(self, prefix: str) -> Issue:
        """The same issue with its expressions re-rooted (Observation.x -> Bundle.entry[2].resource.x)."""
        moved = [prefix + e.split(".", 1)[1] if "." in e else prefix.rstrip(".") for e in self.expression]
        return Issue(self.code, self.diagnostics, moved or [prefix.rstrip(".")], self.severity)


@dataclass
class FhirError(Exception):
    """An answer of `status` whose body is an OperationOutcome of `issues`; nothing the request wrote stays."""

    status: int
    issues: list[Issue] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(i.diagnostics for i in self.issues)


def error(status: int, code: str, diagnostics: str, *expression: str) -> FhirError:
    return FhirError(status, [Issue(code, diagnostics, expression)])


def outcome_resource(issues: Sequence[Issue]) -> OperationOutcome:
    """The OperationOutcome for `issues` (FHIR requires at least one issue: an empty list says "all ok")."""
    rows = list(issues) or [Issue("informational", "all ok", severity="information")]
    return OperationOutcome(
        issue=[
            OperationOutcomeIssue(
                severity=i.severity,
                code=i.code,
                diagnostics=i.diagnostics,
                expression=list(i.expression) or None,
            )
            for i in rows
        ]
    )


def _fhirpath(root: str, loc: Sequence[Any]) -> str:
    path = root
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part == "for_fhir":
            path += ".for"
        else:
            path += f".{part}"
    return path


def from_validation_error(root: str, exc: ValidationError) -> FhirError:
    """A 400 naming each element fhir.resources rejected (pydantic locations turned into FHIRPath)."""
    issues = []
    for err in exc.errors()[:20]:
        loc = [p for p in err.get("loc", ()) if not (isinstance(p, str) and p.startswith("function-"))]
        issues.append(Issue("structure", f"{err.get('msg', 'invalid')}", [_fhirpath(root, loc)]))
    return FhirError(400, issues or [Issue("structure", "the resource is not valid FHIR R4", [root])])
