"""compose.yaml cannot be run here (no Docker engine), so check that it points at things that exist."""

from __future__ import annotations

import importlib
import importlib.util
import shlex
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
SERVICES = COMPOSE["services"]
APP_SERVICES = [name for name, s in SERVICES.items() if "build" in s]


def _command(service: dict) -> list[str]:
    command = service["command"]
    if isinstance(command, str):
        return shlex.split(command)
    if command[:2] == ["sh", "-c"]:
        return shlex.split(command[2])
    return list(command)


def test_the_production_shape_has_the_expected_services() -> None:
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(SERVICES)


def test_exactly_one_beat() -> None:
    beats = [name for name in APP_SERVICES if "beat" in _command(SERVICES[name])]
    assert beats == ["beat"]
    assert SERVICES["beat"].get("deploy", {}).get("replicas", 1) == 1


@pytest.mark.parametrize("name", ["postgres", "redis", "web", "worker", "beat"])
def test_every_long_running_service_has_a_healthcheck(name: str) -> None:
    assert SERVICES[name]["healthcheck"]["test"]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_app_command_points_at_something_that_exists(name: str) -> None:
    words = _command(SERVICES[name])
    environment = SERVICES[name]["environment"]
    assert importlib.util.find_spec(environment["DJANGO_SETTINGS_MODULE"]) is not None
    if words[0] == "gunicorn":
        module, _, attribute = words[1].partition(":")
        assert hasattr(importlib.import_module(module), attribute or "application")
    elif words[0] == "celery":
        app_module = words[words.index("-A") + 1]
        assert importlib.import_module(app_module).celery_app.main == "carepath"
        assert words[words.index("-A") + 2] in {"worker", "beat"}
    else:
        # `python manage.py X && python manage.py Y`: every management command must exist.
        commands = [words[i + 1] for i, w in enumerate(words) if w == "manage.py"]
        assert commands and all(c in get_commands() for c in commands)


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_reach_the_database_and_broker_services_defined_here(name: str) -> None:
    environment = SERVICES[name]["environment"]
    assert urlparse(environment["DATABASE_URL"]).hostname in SERVICES
    assert urlparse(environment["CELERY_BROKER_URL"]).hostname in SERVICES
    assert set(SERVICES[name]["depends_on"]) >= {"postgres", "redis"}


def test_the_inline_image_installs_the_pinned_requirements() -> None:
    dockerfile = SERVICES["web"]["build"]["dockerfile_inline"]
    assert "COPY requirements.txt" in dockerfile and (ROOT / "requirements.txt").exists()
    assert "pip install --no-cache-dir -r requirements.txt" in dockerfile


def test_each_gunicorn_worker_freezes_what_it_loaded_once_the_application_is_up() -> None:
    # carepath.gunicorn_conf.post_worker_init: the framework's long-lived objects leave the collector's passes.
    import gc

    from carepath import gunicorn_conf

    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        gunicorn_conf.post_worker_init(object())
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
