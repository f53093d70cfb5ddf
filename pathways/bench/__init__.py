"""The benchmark suite (docs/benchmarks.md): one synthetic data generator (data.py), the bare "floor" views that
run the API pages' SQL without the framework (floor.py), the HTTP load runner (http.py) and the measurements
(measure.py). `manage.py bench` drives them. Synthetic data only; never point it at a real database."""
