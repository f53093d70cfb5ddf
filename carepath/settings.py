"""Carepath settings, read from the environment (12-factor). See README "Configuration"."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

from carepath.photo_storage import wound_photo_storage

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("CAREPATH_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env(
    DEBUG=(bool, False),
    ALLOWED_HOSTS=(list, ["localhost", "127.0.0.1", "[::1]"]),
)

DEBUG = env("DEBUG")
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (set DEBUG=1 for local development).")
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"  # noqa: S105
ALLOWED_HOSTS = env("ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    # Login lockout per (username, client address); see the AXES_* settings below.
    "axes",
    "pathways",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Request ids, and one AuditEvent per API/dashboard request in the request's transaction (docs/audit.md).
    "pathways.middleware.AuditMiddleware",
    # Automatic logoff: idle and absolute session limits (pathways/web/session_expiry.py, docs/security.md).
    "pathways.web.session_expiry.SessionExpiryMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # request.htmx: the workspace answers htmx requests with the changed fragment only (docs/workspace.md).
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires; it keeps the login views' own lockout answers (axes_keep_response).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "carepath.urls"
WSGI_APPLICATION = "carepath.wsgi.application"
ASGI_APPLICATION = "carepath.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                # The workspace's header: nav links the user may open, start page, unread notifications.
                "pathways.web.nav.workspace_context",
            ],
        },
    },
    {
        # The workspace's task rows and cards only (pathways/jinja2/; pathways/web/jinja_env.py says why).
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "NAME": "jinja2",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "environment": "pathways.web.jinja_env.environment",
            "context_processors": ["pathways.web.jinja_env.csrf_once"],
        },
    },
]

# Embedded default: a SQLite file under var/. Production: DATABASE_URL=postgres://...
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'carepath.sqlite3'}")}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share the file: wait for locks instead of failing at once.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
    DATABASES["default"]["CONN_MAX_AGE"] = 0
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Planner settings for this workload, whose hot rows fit in memory (docs/benchmarks.md, "Tuning"): random
    # reads cost about what sequential ones do (the default 4.0 assumes spinning disks, and made the task pages
    # hash every enrollment ever made, so they slowed as the history grew), and JIT compilation (100-200 ms a
    # statement) never pays off for these queries. DATABASE_PG_OPTIONS replaces the string ("" for none).
    _pg_options = env.str("DATABASE_PG_OPTIONS", default="-c random_page_cost=1.1 -c jit=off")
    if _pg_options:
        DATABASES["default"].setdefault("OPTIONS", {}).setdefault("options", _pg_options)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "pathways.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Login lockout (django-axes; docs/operations.md, "Login lockout") ------------------------------
# https://django-axes.readthedocs.io/en/latest/4_configuration.html
# The axes backend refuses a locked-out (username, address) pair before the password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Keyed on the combination: a whole hospital behind one NAT address is never locked out by someone else's
# failures, or by credential stuffing over many usernames from that address (issue 12, section 8).
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = env.int("LOGIN_MAX_FAILURES", default=5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_CALLABLE = "pathways.services.auth.axes_username"
AXES_LOCKOUT_CALLABLE = "pathways.services.auth.axes_keep_response"
AXES_WHITELIST_CALLABLE = "pathways.services.auth.axes_exempt"
# One address rule for axes, DRF's throttles (NUM_PROXIES below) and the audit trail.
AXES_CLIENT_IP_CALLABLE = "pathways.request_context.client_address"
# Successful logins are audit events already (docs/audit.md); axes keeps only the failure counters.
AXES_DISABLE_ACCESS_LOG = True
AXES_VERBOSE = False
# How many reverse proxies in front of the application append to X-Forwarded-For. 0: the header is ignored
# and the connection's address counts. Set it to exactly the number of proxies: one too many lets clients
# choose their address (and dodge the lockout and throttles).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"  # stored and computed in UTC; local times come from each site's zoneinfo
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.str("STATIC_ROOT", default=str(VAR_DIR / "staticfiles"))
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Wound photographs: var/photos/ by default, any S3-compatible store with CAREPATH_PHOTOS_S3_BUCKET set
# (carepath/photo_storage.py; README "Wound photographs").
STORAGES["wound_photos"] = wound_photo_storage(env, VAR_DIR)
# Serve from the app directories without collectstatic in development and tests.
WHITENOISE_USE_FINDERS = DEBUG or env.bool("WHITENOISE_USE_FINDERS", default=False)
if WHITENOISE_USE_FINDERS:
    Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)  # whitenoise warns when it is missing

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "workspace:home"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# --- Sign-on through the hospital's OpenID Connect provider (README, "Connecting to a hospital's identity
# provider"; docs/security.md). mozilla-django-oidc runs the authorization code flow; pathways.web.sign_on
# adds discovery, issuer/audience checks and the claim mapping.
# https://mozilla-django-oidc.readthedocs.io/en/stable/settings.html
OIDC_RP_CLIENT_ID = env.str("OIDC_RP_CLIENT_ID", default="")
OIDC_RP_CLIENT_SECRET = env.str("OIDC_RP_CLIENT_SECRET", default="")
# Sign-on is offered when a client id is configured.
OIDC_ENABLED = bool(OIDC_RP_CLIENT_ID)
OIDC_PROVIDER_NAME = env.str("OIDC_PROVIDER_NAME", default="your hospital account")
# The issuer (the ID token's `iss`, checked exactly); the endpoints come from its discovery document unless
# set one by one below (OIDC_DISCOVERY_URL overrides where that document is).
OIDC_OP_ISSUER = env.str("OIDC_OP_ISSUER", default="").rstrip("/")
OIDC_DISCOVERY_URL = env.str(
    "OIDC_DISCOVERY_URL", default=f"{OIDC_OP_ISSUER}/.well-known/openid-configuration" if OIDC_OP_ISSUER else ""
)
OIDC_OP_AUTHORIZATION_ENDPOINT = env.str("OIDC_OP_AUTHORIZATION_ENDPOINT", default="")
OIDC_OP_TOKEN_ENDPOINT = env.str("OIDC_OP_TOKEN_ENDPOINT", default="")
OIDC_OP_USER_ENDPOINT = env.str("OIDC_OP_USER_ENDPOINT", default="")
OIDC_OP_JWKS_ENDPOINT = env.str("OIDC_OP_JWKS_ENDPOINT", default="")
OIDC_OP_END_SESSION_ENDPOINT = env.str("OIDC_OP_END_SESSION_ENDPOINT", default="")
OIDC_RP_SCOPES = env.str("OIDC_RP_SCOPES", default="openid email profile groups")
OIDC_RP_SIGN_ALGO = env.str("OIDC_RP_SIGN_ALGO", default="RS256")
# The authorization code flow with PKCE (RFC 7636) and a nonce; state is always checked by the library.
OIDC_USE_PKCE = True
OIDC_PKCE_CODE_CHALLENGE_METHOD = "S256"
OIDC_USE_NONCE = True
OIDC_TIMEOUT = env.int("OIDC_TIMEOUT_SECONDS", default=10)
# Seconds of clock difference tolerated when checking the ID token's exp/iat.
OIDC_CLOCK_SKEW_SECONDS = env.int("OIDC_CLOCK_SKEW_SECONDS", default=60)
# Kept in the session for RP-initiated logout's id_token_hint.
OIDC_STORE_ID_TOKEN = True
OIDC_OP_LOGOUT_URL_METHOD = "pathways.web.sign_on.provider_logout_url"
OIDC_AUTHENTICATION_CALLBACK_URL = "oidc_authentication_callback"
# Claim names, and the YAML file that maps group claim values to roles and sites (pathways/domain/claim_map.py).
OIDC_CLAIM_USERNAME = env.str("OIDC_CLAIM_USERNAME", default="preferred_username")
OIDC_CLAIM_EMAIL = env.str("OIDC_CLAIM_EMAIL", default="email")
OIDC_CLAIM_GROUPS = env.str("OIDC_CLAIM_GROUPS", default="groups")
OIDC_CLAIM_MAP_FILE = env.str("OIDC_CLAIM_MAP_FILE", default="")
# Local usernames and passwords (the login form and the token endpoint). The demo keeps them; a hospital
# that signs on through its provider switches them off.
LOCAL_LOGIN_ENABLED = env.bool("LOCAL_LOGIN_ENABLED", default=True)
if OIDC_ENABLED:
    AUTHENTICATION_BACKENDS.append("pathways.web.sign_on.CarepathOIDCBackend")
if not LOCAL_LOGIN_ENABLED:
    AUTHENTICATION_BACKENDS.remove("django.contrib.auth.backends.ModelBackend")

# --- Automatic logoff (HIPAA 164.312(a)(2)(iii); pathways.web.session_expiry) ----------------------
SESSION_IDLE_TIMEOUT = dt.timedelta(minutes=env.int("SESSION_IDLE_TIMEOUT_MINUTES", default=15))
# The page warns this long before the idle logoff and offers to stay signed in.
SESSION_IDLE_WARNING = dt.timedelta(seconds=env.int("SESSION_IDLE_WARNING_SECONDS", default=120))
SESSION_ABSOLUTE_LIFETIME = dt.timedelta(hours=env.int("SESSION_ABSOLUTE_LIFETIME_HOURS", default=12))
# The cookie dies with the absolute lifetime; the middleware enforces both limits on the server.
SESSION_COOKIE_AGE = int(SESSION_ABSOLUTE_LIFETIME.total_seconds())

# Default: each e-mail is written as a file under var/mail/ (nothing leaves the machine until an operator
# configures SMTP, and a demo's first escalations do not flood the terminal).
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.filebased.EmailBackend")
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(VAR_DIR / "mail"))
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)  # a hung SMTP server must not hold a worker forever
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="carepath@localhost")

REDIS_URL = env.str("REDIS_URL", default="")

# --- Celery -------------------------------------------------------------------------------------
# Embedded default: kombu's filesystem transport (no server needed). With REDIS_URL set, Redis.
# https://docs.celeryq.dev/projects/kombu/en/stable/reference/kombu.transport.filesystem.html
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
_celery_dir = VAR_DIR / "celery"
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("out", "processed", "control"):
        (_celery_dir / sub).mkdir(parents=True, exist_ok=True)
    # https://docs.celeryq.dev/en/stable/userguide/configuration.html#broker-transport-options
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "data_folder_in": str(_celery_dir / "out"),
        "data_folder_out": str(_celery_dir / "out"),
        "processed_folder": str(_celery_dir / "processed"),
        # Broadcast (remote control) messages; the default is ./control in the working directory.
        "control_folder": str(_celery_dir / "control"),
        "store_processed": False,
    }
else:
    # Redis redelivers unacknowledged messages after visibility_timeout; Carepath never uses long
    # ETAs (celery#2599, kombu#337), so one hour comfortably exceeds any task's time limit.
    # https://docs.celeryq.dev/en/stable/getting-started/backends-and-brokers/redis.html#visibility-timeout
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
# Results are not used: tasks write their outcome to the database.
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-ignore-result
CELERY_TASK_IGNORE_RESULT = True
# Acknowledge after the task ran, so a crashed worker's task is redelivered; tasks are idempotent.
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-acks-late
CELERY_TASK_ACKS_LATE = True
# Redeliver when the worker process is killed (SIGKILL, OOM) rather than dropping the message.
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-reject-on-worker-lost
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# One message at a time per process: sweeps are long-ish and acks_late holds the message.
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#worker-prefetch-multiplier
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A hung sweep is interrupted (soft) and then killed (hard) instead of blocking the worker.
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-time-limit
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=240)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
# JSON only: no pickle, so a message can never execute code.
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-serializer
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
# Beat keeps its small state file under var/, not in the working directory.
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#beat-schedule-filename
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Two queues, so an e-mail backlog never delays the scheduling sweeps (issue 12; docs/operations.md, "Queues"):
# `sweeps` for the beat sweeps (and anything unrouted), `email` for the per-notification e-mails and the
# outbox sweep. A worker started without -Q consumes both (manage.py up, tests); production runs one worker
# pool per queue (compose.yaml).
# https://docs.celeryq.dev/en/stable/userguide/routing.html#automatic-routing
CELERY_TASK_DEFAULT_QUEUE = "sweeps"
# Each queue names its own exchange and routing key: a bare Queue("email") inherits the default exchange and
# key ("sweeps"), so both queues would be bound to one key and every message would reach both of them.
CELERY_TASK_QUEUES = (
    Queue("sweeps", Exchange("sweeps", type="direct"), routing_key="sweeps"),
    Queue("email", Exchange("email", type="direct"), routing_key="email"),
)
CELERY_TASK_ROUTES = {
    "carepath.send_notification_email": {"queue": "email"},
    "carepath.sweep_email": {"queue": "email"},
    "carepath.sweep_materialize": {"queue": "sweeps"},
    "carepath.sweep_expire": {"queue": "sweeps"},
    "carepath.sweep_escalate": {"queue": "sweeps"},
    "carepath.sweep_remind": {"queue": "sweeps"},
}
# Retry connecting to the broker at start-up rather than exiting (Celery 6 changes the default).
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#broker-connection-retry-on-startup
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- Carepath -----------------------------------------------------------------------------------
CAREPATH = {
    # How far ahead the materializer creates tasks.
    "MATERIALIZE_HORIZON_HOURS": env.int("CAREPATH_MATERIALIZE_HORIZON_HOURS", default=24),
    "SWEEP_BATCH_SIZE": env.int("CAREPATH_SWEEP_BATCH_SIZE", default=500),
    # Overdue by this long -> second escalation (priority raised, coordinator told again).
    "ESCALATION_SECOND_THRESHOLD_HOURS": env.int("CAREPATH_ESCALATION_SECOND_THRESHOLD_HOURS", default=24),
    "DUE_SOON_HOURS": env.int("CAREPATH_DUE_SOON_HOURS", default=2),
    # The e-mail outbox (docs/operations.md): tries per e-mail, and how long the sweep leaves a fresh
    # notification to the per-id task queued on commit.
    "EMAIL_MAX_ATTEMPTS": env.int("CAREPATH_EMAIL_MAX_ATTEMPTS", default=12),
    "EMAIL_SWEEP_GRACE_SECONDS": env.int("CAREPATH_EMAIL_SWEEP_GRACE_SECONDS", default=60),
    # Corrected calcium and Ca x P use the latest inputs no further apart than this (docs/clinical-rules.md).
    "DERIVED_WINDOW_HOURS": env.int("CAREPATH_DERIVED_WINDOW_HOURS", default=72),
    "CONTENT_DIR": BASE_DIR / "pathways" / "content",
    # Wound photographs (docs/security.md, "Wound photographs"): the largest upload in bytes, the most pixels
    # (width x height) an image may decode to, the longest edge kept (larger ones are scaled down), the
    # thumbnail's longest edge, and how many days a soft-deleted photo's files are kept before
    # `manage.py purge_wound_photos` removes them.
    "PHOTO_MAX_BYTES": env.int("CAREPATH_PHOTO_MAX_BYTES", default=20 * 1024 * 1024),
    "PHOTO_MAX_PIXELS": env.int("CAREPATH_PHOTO_MAX_PIXELS", default=50_000_000),
    "PHOTO_MAX_EDGE": env.int("CAREPATH_PHOTO_MAX_EDGE", default=4096),
    "PHOTO_THUMBNAIL_EDGE": env.int("CAREPATH_PHOTO_THUMBNAIL_EDGE", default=320),
    "PHOTO_RETENTION_DAYS": env.int("CAREPATH_PHOTO_RETENTION_DAYS", default=30),
}

# --- API tokens (pathways/services/api_tokens.py; docs/security.md) --------------------------------
# A person's token (POST /api/v1/auth/token/) expires after this many days.
API_TOKEN_LIFETIME_DAYS = env.int("API_TOKEN_LIFETIME_DAYS", default=30)
# A service account's token: the default and the longest expiry an admin may give.
SERVICE_TOKEN_LIFETIME_DAYS = env.int("SERVICE_TOKEN_LIFETIME_DAYS", default=90)
SERVICE_TOKEN_MAX_LIFETIME_DAYS = env.int("SERVICE_TOKEN_MAX_LIFETIME_DAYS", default=365)

# --- REST framework -----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Hashed, expiring, scoped tokens (pathways/api/authentication.py), sent as "Authorization: Token <key>".
        "pathways.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["pathways.api.permissions.IsActiveStaff"],
    "DEFAULT_FILTER_BACKENDS": ["pathways.api.filter_backend.FilterBackend"],
    # JSON with a nesting limit (pathways/api/parsers.py); forms for the browsable API.
    "DEFAULT_PARSER_CLASSES": [
        "pathways.api.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "pathways.api.schema.CarepathAutoSchema",
    # Rejects limits above 200 with a 400 instead of silently clamping them.
    "DEFAULT_PAGINATION_CLASS": "pathways.api.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "pathways.api.exceptions.exception_handler",
    # The token endpoint's rate per client address; the lockout per (username, address) is django-axes'.
    "DEFAULT_THROTTLE_RATES": {"login": env.str("LOGIN_RATE", default="30/minute")},
    # The throttles' client address: X-Forwarded-For only as far as the trusted proxies (DRF's default, None,
    # keys on the whole client-supplied header, so rotating it dodged the limit).
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
    "DATETIME_FORMAT": "iso-8601",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Carepath API",
    "DESCRIPTION": "Care-pathway workflow for calciphylaxis teams. Supports clinical teams; not medical advice.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "TaskStatusEnum": "pathways.choices.TaskStatus",
        "EnrollmentStatusEnum": "pathways.choices.EnrollmentStatus",
        "TemplateStatusEnum": "pathways.choices.TemplateStatus",
        "RiskMedicationEnum": "pathways.choices.RiskMedication",
        "MedicationChangeKindEnum": "pathways.choices.MedicationChangeKind",
        "RoleEnum": "pathways.choices.Role",
        "TokenScopeEnum": "pathways.choices.TokenScope",
    },
}

# --- Logging: identifiers only; patient details never reach the logs -----------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "pathways.request_context.RequestIdLogFilter"},
        "client_errors": {"()": "pathways.request_context.ClientErrorLogFilter"},
    },
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["request_id"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Through the root handler only: Django's own DEBUG console handler printed every record a second time.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.request": {"filters": ["client_errors"]},
        "django.db.backends": {"level": "WARNING"},
        # axes logs each failure with the username and address; pathways.services.auth logs it once, without.
        "axes": {"level": "ERROR"},
    },
}

# --- HTTPS (docs/operations.md, "Security settings") ----------------------------------------------
# Secure by default whenever DEBUG is off; each can be changed from the environment. DEBUG=1 (manage.py up
# for a local trial) keeps plain http working.
# https://docs.djangoproject.com/en/5.2/ref/settings/#secure-ssl-redirect
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# The container healthcheck and load balancers probe /healthz over plain http from inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# https://docs.djangoproject.com/en/5.2/ref/middleware/#http-strict-transport-security
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
# Preloading is the domain owner's decision (a submission to the browsers' list, hard to undo), so it is
# opt-in; check --deploy's reminder about it (W021) is silenced below for that reason only.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=env.bool("SECURE_COOKIES", default=not DEBUG))
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=env.bool("SECURE_COOKIES", default=not DEBUG))
# Behind a TLS-terminating proxy: "HTTP_X_FORWARDED_PROTO,https" makes Django trust that header from the proxy
# (the proxy must overwrite it). Unset: only the connection itself counts.
# https://docs.djangoproject.com/en/5.2/ref/settings/#secure-proxy-ssl-header
_proxy_ssl_header = [part.strip() for part in env.list("SECURE_PROXY_SSL_HEADER", default=[]) if part.strip()]
if len(_proxy_ssl_header) == 2:
    SECURE_PROXY_SSL_HEADER = (_proxy_ssl_header[0], _proxy_ssl_header[1])
elif _proxy_ssl_header:
    raise ImproperlyConfigured("SECURE_PROXY_SSL_HEADER must be HEADER,VALUE, e.g. HTTP_X_FORWARDED_PROTO,https")
