"""gunicorn settings shared by `manage.py up` and compose.yaml (`--config python:carepath.gunicorn_conf`).

The access log names the path without its query string, and no referer: a query such as `?mrn=` (a patient
search) or a page linked from one must never put patient identifiers into a log (issue 12, section 7). The
request id ties each line to its audit event.
https://docs.gunicorn.org/en/stable/settings.html#access-log-format
"""

# remote address, time, method and path (no query), status, bytes, duration (ms), request id
access_log_format = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms %({x-request-id}o)s'


def post_worker_init(worker: object) -> None:
    """Once a worker has loaded Django and Carepath, freeze what it loaded (`gc.freeze`, Python's documented
    use in pre-fork servers: https://docs.python.org/3/library/gc.html#gc.freeze). The garbage collector's full
    passes then walk what requests allocate, not the framework's several hundred thousand long-lived objects;
    those passes were the API pages' slowest requests (p99, docs/benchmarks.md)."""
    import gc

    gc.freeze()
