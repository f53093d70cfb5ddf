"""Accessibility checks in the browser: axe-core, as shipped by axe-selenium-python, on the page as it stands.

axe-selenium-python 2.1.6 (the newest on the index) ships axe-core 3.1.1, which knows the WCAG 2.0 and 2.1
A/AA rules; the WCAG 2.2 additions (such as target size) are not in it, so those are checked by hand
(docs/workspace.md, "Accessibility").
"""

from __future__ import annotations

from typing import Any

from axe_selenium_python import Axe

BLOCKING_IMPACTS = frozenset({"serious", "critical"})
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21aa", "best-practice"]

# Axe.run() would pass options alone as axe's *context* argument; call axe.run(document, options) ourselves,
# and report a rejected promise instead of timing out on it.
_RUN = """
const done = arguments[arguments.length - 1];
axe.run(document, {runOnly: {type: "tag", values: arguments[0]}})
   .then(results => done({violations: results.violations}))
   .catch(error => done({error: String(error)}));
"""


def axe_violations(driver: Any) -> list[dict[str, Any]]:
    """The serious and critical axe violations of the current page (WCAG 2.0/2.1 A and AA, best practice)."""
    Axe(driver).inject()
    result = driver.execute_async_script(_RUN, WCAG_TAGS)
    if "error" in result:
        raise AssertionError(f"axe-core failed to run: {result['error']}")
    return [v for v in result["violations"] if v.get("impact") in BLOCKING_IMPACTS]


def assert_accessible(driver: Any) -> None:
    """Fail with axe's own report when the page has a serious or critical violation."""
    violations = axe_violations(driver)
    assert not violations, Axe(driver).report(violations)
