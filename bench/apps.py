from django.apps import AppConfig


class BenchConfig(AppConfig):
    """The benchmark suite: installed only by carepath.bench_settings, never by the product's settings."""

    name = "bench"
    verbose_name = "Carepath benchmarks"
