from django.apps import AppConfig


class PathwaysConfig(AppConfig):
    """The Carepath pathway app."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "pathways"
    verbose_name = "Care pathways"
