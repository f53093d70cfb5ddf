"""The benchmark suite (docs/benchmarks.md): one synthetic data generator (data.py), the bare "floor" views that
run the API pages' SQL without the framework (floor.py), the HTTP load runner (http.py) and the measurements
(measure.py). `manage.py bench` drives them.

A Django app of its own, outside the product: only carepath.bench_settings installs it and routes /bench-floor/
(bench/urls.py), so run it as `DJANGO_SETTINGS_MODULE=carepath.bench_settings manage.py bench …`. Synthetic data
only; never point it at a real database."""
