"""`{% task_items rows "row" %}`: a page's task rows or cards, rendered by the Jinja2 partials
(pathways/web/jinja_env.py says why)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import template
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

# What a page may tell the partials besides the rows (task_action.html: the outcome of an action).
_PASSED = ("next", "notice", "error", "form_action", "form", "live")


@register.simple_tag(takes_context=True)
def task_items(context: template.Context, rows: Sequence[dict[str, Any]], view: str) -> SafeString:
    """`rows` (pathways.web.work.task_rows' dicts) as table rows (`view` "row": pathways/work/_task_row.html)
    or cards ("card": _task_card.html), each action form returning to `next` (default: this page)."""
    if view not in ("row", "card"):
        raise template.TemplateSyntaxError(f'task_items renders "row" or "card", not {view!r}')
    passed = {name: context.get(name) for name in _PASSED}
    html = render_to_string(
        "pathways/work/_task_items.html",
        {**passed, "rows": rows, "view": view},
        request=context.get("request"),
        using="jinja2",
    )
    return mark_safe(html)  # noqa: S308 - the partials escape what they show
