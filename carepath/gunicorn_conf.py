"""gunicorn settings shared by `manage.py up` and compose.yaml (`--config python:carepath.gunicorn_conf`).

The access log names the path without its query string, and no referer: a query such as `?mrn=` (a patient
search) or a page linked from one must never put patient identifiers into a log (issue 12, section 7). The
request id ties each line to its audit event.
https://docs.gunicorn.org/en/stable/settings.html#access-log-format
"""

# remote address, time, method and path (no query), status, bytes, duration (ms), request id
access_log_format = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms %({x-request-id}o)s'
