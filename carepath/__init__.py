"""Carepath project package; exposes the Celery app so that `celery -A carepath` finds it."""

from carepath.celery import app as celery_app

__all__ = ["celery_app"]
