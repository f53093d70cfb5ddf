"""The Jinja2 engine of the workspace's task rows and cards (pathways/jinja2/; docs/workspace.md, "Templates").

A task's row or card is the one piece of HTML a page repeats dozens of times, each with up to five small
forms: Django's template language spent about 0.7 ms on each row, most of My work's time (issue 13's
My work ÷ API queue target). The same templates in Jinja2, which compiles them to Python, render in about a
sixth of that. Every other page stays in Django's templates; they place rows and cards with
`{% task_items rows "row" %}` (pathways/templatetags/workspace.py), and the htmx answers render the partials
themselves. Autoescaping is on, as in Django's engine."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.template.backends.utils import csrf_input
from django.templatetags.static import static
from jinja2 import Environment

from pathways.web.reversing import reverse_kept


def url(name: str, *args: Any) -> str:
    """`{{ url("workspace:patient", patient.pk) }}`: Django's reverse(), as the `{% url %}` tag (remembered:
    pathways.web.reversing)."""
    return reverse_kept(name, *args)


def environment(**options: Any) -> Environment:
    """The engine's environment (settings.TEMPLATES, OPTIONS "environment"): `url` and `static` as globals."""
    env = Environment(**options)  # noqa: S701 - Django's backend passes autoescape=True
    env.globals.update(url=url, static=static)
    return env


def csrf_once(request: HttpRequest) -> dict[str, Any]:
    """Context processor: the CSRF field made once per render. Django's Jinja2 backend makes `csrf_input`
    lazily on each use, a fresh masked token for each of a page's hundred forms."""
    return {"csrf_input": csrf_input(request)}
