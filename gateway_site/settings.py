"""Settings, read from the environment (12-factor). See docs/config.md#environment."""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab

from audit.observability.alert_settings import AlertSettings, ReadinessSettings
from gateway_site.env import SettingError, envbool, envfloat, envint, envlist, envstr
from gateway_site.proxy_settings import ProxySettings
from gateway_site.redis_settings import celery_sentinel_url, redis_sentinels
from routing.core.egress import EgressPolicy

BASE_DIR = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = (
    BASE_DIR / "templates"
    if (BASE_DIR / "templates").is_dir()
    else Path(__file__).resolve().parent / "templates"
)

DEBUG = envbool("GATEWAY_DEBUG", False)
GATEWAY_ENV = envstr("GATEWAY_ENV", "dev")
SECRET_KEY = envstr("GATEWAY_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG and GATEWAY_ENV == "production":
        raise SettingError("GATEWAY_SECRET_KEY must be set in production")
    SECRET_KEY = "dev-only-insecure-secret-key-change-me"  # noqa: S105 - dev default, refused in production

# Provider credentials are encrypted at rest with these Fernet keys (first one encrypts,
# all of them decrypt, so keys can be rotated). Derived from SECRET_KEY when unset.
CREDENTIAL_KEYS = envlist("GATEWAY_CREDENTIAL_KEYS", [])

ALLOWED_HOSTS = envlist("GATEWAY_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "axes",
    "ninja",  # serves the API docs assets locally (no CDN)
    # The card's rooms, lowest layer first; the apps nested in a room keep their own labels.
    "audit.activity",
    "tenants",
    "tenants.quotas",
    "routing",
    "routing.evaluations",
    "routing.prompts",
    "routing.guardrails",
    "routing.responses_state",
    "audit",
    "audit.observability",
    "billing",
    "routing.cache",
    "routing.mcp_gateway",  # agents' tools go through routes of their own (docs/mcp.md)
    "gateway_site.declarative",
    "gateway_site.console",
    "gateway_site.api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # A NUL or an out-of-range value in a console request: a styled 400, never a 500.
    "gateway_site.console.views.errors.UnstorableInputMiddleware",
    # Last, as django-axes asks: turns a throttled sign-in into its lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "gateway_site.urls"
ASGI_APPLICATION = "gateway_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Every template lives in the top-level templates/<app>/ (installed as
        # gateway_site/templates by the wheel, see setup.py); apps keep no templates of their own.
        "DIRS": [TEMPLATES_DIR],
        "APP_DIRS": True,  # third-party apps' templates (the admin, ninja's docs page)
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "gateway_site.console.context_processors.console",
            ],
            # `usd`: one precision and rounding rule for money on every page.
            "builtins": ["billing.templatetags.money"],
        },
    },
]

# The embedded default is a SQLite file so that a first run needs nothing installed.
DATABASES = {
    "default": dj_database_url.parse(
        envstr("DATABASE_URL", f"sqlite:///{BASE_DIR / 'var' / 'gateway.sqlite3'}"),
        conn_max_age=0,
    )
}
# Each test run creates (and drops at its end) a database of its own, so two runs can share one
# server: GATEWAY_TEST_DB_NAME names it, else the process id does (SQLite's is in memory, so
# already per process). Live gateways started by the tests are handed that name in DATABASE_URL
# (tests/support/live.py).
if envstr("GATEWAY_TEST_DB_NAME"):
    DATABASES["default"]["TEST"] = {"NAME": envstr("GATEWAY_TEST_DB_NAME")}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Under ASGI, persistent connections leak per thread; psycopg's pool is the safe choice.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": envint("GATEWAY_DB_POOL_MIN", 2),
        "max_size": envint("GATEWAY_DB_POOL_MAX", 10),
        "timeout": 10,
        # psycopg_pool retries a lost server with a doubling delay (1, 2, 4 … s) for this long,
        # then gives up and starts afresh on the next demand: short, so that a database back
        # after an outage is used again within seconds, not after the next doubled wait.
        "reconnect_timeout": envfloat("GATEWAY_DB_POOL_RECONNECT_SECONDS", 5.0),
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default cannot create "NULLs not distinct" constraints (billing prices,
    # guardrail attachments); PostgreSQL enforces them. Say so here, not on every start.
    SILENCED_SYSTEM_CHECKS = ["models.W047"]
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Optional: without it, in-process implementations are used and Celery runs eagerly.
REDIS_URL = envstr("REDIS_URL")
# REDIS_URL names one node of a Redis Cluster (gateway_site/redis_clients.py). Celery's broker
# does not speak the cluster protocol: give it its own server with CELERY_BROKER_URL.
REDIS_CLUSTER = envbool("REDIS_CLUSTER")
# Or a master and its replicas watched by Sentinel: the sentinels name the master's address,
# REDIS_URL only its database number and credentials (gateway_site/redis_clients.py).
REDIS_SENTINELS = redis_sentinels(envlist("REDIS_SENTINELS", []))
REDIS_SENTINEL_MASTER = envstr("REDIS_SENTINEL_MASTER")
REDIS_SENTINEL_PASSWORD = envstr("REDIS_SENTINEL_PASSWORD")
if REDIS_SENTINELS:
    if REDIS_CLUSTER:
        raise SettingError("REDIS_SENTINELS and REDIS_CLUSTER exclude each other")
    if not REDIS_SENTINEL_MASTER:
        raise SettingError("REDIS_SENTINELS needs REDIS_SENTINEL_MASTER (the master's name)")
    REDIS_URL = REDIS_URL or f"redis://{REDIS_SENTINEL_MASTER}/0"
CELERY_BROKER_URL = (
    envstr("CELERY_BROKER_URL")
    or (celery_sentinel_url(REDIS_SENTINELS, REDIS_URL) if REDIS_SENTINELS else "")
    or ("" if REDIS_CLUSTER else REDIS_URL)
    or "memory://"
)
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = (
    {
        "master_name": REDIS_SENTINEL_MASTER,
        "sentinel_kwargs": {"password": REDIS_SENTINEL_PASSWORD or None},
    }
    if CELERY_BROKER_URL.startswith("sentinel://")
    else {}
)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL == "memory://"
CELERY_TASK_EAGER_PROPAGATES = True
# Optional bearer token for /metrics (otherwise restrict it at the network edge).
GATEWAY_METRICS_TOKEN = envstr("GATEWAY_METRICS_TOKEN")
GATEWAY_READINESS = ReadinessSettings(
    audit_backlog=envint("GATEWAY_READY_AUDIT_BACKLOG", 2000),
    pool_waiting=envint("GATEWAY_READY_POOL_WAITING", 4),
    loop_lag_ms=envfloat("GATEWAY_READY_LOOP_LAG_MS", 500.0),
)
GATEWAY_ALERTS = AlertSettings(
    webhook_urls=tuple(envlist("GATEWAY_ALERT_WEBHOOKS", [])),
    emails=tuple(envlist("GATEWAY_ALERT_EMAILS", [])),
    window_minutes=envint("GATEWAY_ALERT_WINDOW_MINUTES", 5),
    error_rate=envfloat("GATEWAY_ALERT_ERROR_RATE", 0.2),
    cost_spike_factor=envfloat("GATEWAY_ALERT_COST_SPIKE_FACTOR", 3.0),
    cost_spike_min_usd=envfloat("GATEWAY_ALERT_COST_SPIKE_MIN_USD", 1.0),
    pii_spike_factor=envfloat("GATEWAY_ALERT_PII_SPIKE_FACTOR", 3.0),
    latency_p99_ms=envfloat("GATEWAY_ALERT_LATENCY_P99_MS", 30_000.0),
)
# Periodic work (`celery -A gateway_site beat`): rollups catch up on their own after downtime.
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "rollup-hourly": {"task": "billing.rollup_hourly", "schedule": 300.0},
    "rollup-daily": {"task": "billing.rollup_daily", "schedule": 900.0},
    "amortise-gpu-prices": {"task": "billing.amortise_gpu_prices", "schedule": 86400.0},
    "alerts-evaluate": {"task": "observability.alerts_evaluate", "schedule": 60.0},
    "cache-expire": {"task": "response_cache.expire", "schedule": 600.0},
    # Tier 2 and 3 signals: after the night's daily rollup, and on Monday mornings.
    "daily-digest": {"task": "observability.daily_digest", "schedule": crontab(hour=7, minute=0)},
    "weekly-digest": {
        "task": "observability.weekly_digest",
        "schedule": crontab(hour=7, minute=5, day_of_week="mon"),
    },
}

# --- the audit trail (docs/audit.md) --------------------------------------------------------
# A stream still unfinished after this long is chained as it is (its worker died).
# The write-ahead journal: every provider call is on this disk before it is forwarded (ADR 0010).
GATEWAY_JOURNAL_DIR = Path(envstr("GATEWAY_JOURNAL_DIR") or BASE_DIR / "var" / "journal")
GATEWAY_JOURNAL_SWEEP_SECONDS = envfloat("GATEWAY_JOURNAL_SWEEP_SECONDS", 30.0)
# How often a worker merges the audit search index's pending list (audit/maintenance.py); 0: never.
GATEWAY_SEARCH_INDEX_TIDY_SECONDS = envfloat("GATEWAY_SEARCH_INDEX_TIDY_SECONDS", 5.0)
# How often each worker reads the cooldowns other processes learned (routing/shared_health.py);
# 0: each process keeps its own view. Needs REDIS_URL.
GATEWAY_SHARED_HEALTH_SECONDS = envfloat("GATEWAY_SHARED_HEALTH_SECONDS", 0.5)
AUDIT_ABANDONED_STREAM_SECONDS = envint("GATEWAY_AUDIT_ABANDONED_STREAM_SECONDS", 24 * 3600)
# Kept this long unless a tenant's audit policy says otherwise (seven years).
AUDIT_DEFAULT_RETENTION_DAYS = envint("GATEWAY_AUDIT_RETENTION_DAYS", 7 * 365)
AUDIT_SEAL_SECONDS = envfloat("GATEWAY_AUDIT_SEAL_SECONDS", 10.0)
AUDIT_CHECKPOINT_MINUTES = envint("GATEWAY_AUDIT_CHECKPOINT_MINUTES", 5)
# Verification fails when links stay this long without a signed checkpoint (a checkpoint deleted
# with the tail it covered, or none being made). 0 turns the check off; without Redis no beat
# signs checkpoints, so it is off by default there.
AUDIT_CHECKPOINT_GRACE_MINUTES = envint(
    "GATEWAY_AUDIT_CHECKPOINT_GRACE_MINUTES", 60 if REDIS_URL else 0
)
CELERY_BEAT_SCHEDULE["audit-seal"] = {"task": "audit.seal", "schedule": AUDIT_SEAL_SECONDS}
CELERY_BEAT_SCHEDULE["audit-retention"] = {"task": "audit.retention", "schedule": 3600.0}
# PostgreSQL: the records table is partitioned by month (audit/partitions.py). The beat creates
# this month's partition and this many after it, and seals months ended this long ago.
AUDIT_PARTITION_MONTHS_AHEAD = envint("GATEWAY_AUDIT_PARTITION_MONTHS_AHEAD", 3)
AUDIT_MONTH_SEAL_GRACE_HOURS = envint("GATEWAY_AUDIT_MONTH_SEAL_GRACE_HOURS", 48)
# Where `manage.py audit_archive export --to s3://...` sends archives: an S3-compatible endpoint
# (MinIO, Ceph...); empty: boto3's own (AWS, or AWS_ENDPOINT_URL).
AUDIT_ARCHIVE_S3_ENDPOINT = envstr("GATEWAY_AUDIT_ARCHIVE_S3_ENDPOINT", "")
CELERY_BEAT_SCHEDULE["audit-partitions"] = {"task": "audit.partitions", "schedule": 3600.0}

# --- stored responses (Responses API `store`, docs/api.md#stored-responses) ----------------------
# Kept this long unless a tenant's responses policy says otherwise; purged hourly.
GATEWAY_RESPONSES_RETENTION_DAYS = envint("GATEWAY_RESPONSES_RETENTION_DAYS", 30)
CELERY_BEAT_SCHEDULE["responses-purge"] = {"task": "responses_state.purge", "schedule": 3600.0}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = envstr("GATEWAY_TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"

# --- the console: sessions, CSRF, sign-in ---------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = envbool("GATEWAY_SECURE_COOKIES", False)
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = envint("GATEWAY_SESSION_HOURS", 8) * 3600
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
CSRF_TRUSTED_ORIGINS = envlist("GATEWAY_CSRF_TRUSTED_ORIGINS", [])
CSRF_FAILURE_VIEW = (
    "gateway_site.console.views.errors.csrf_failure"  # a console page, not Django's bare one
)
if envbool("GATEWAY_BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
LOGIN_URL = "console:login"
LOGIN_REDIRECT_URL = "console:home"
LOGOUT_REDIRECT_URL = "console:login"
# Snippets and the playground use this URL; unset, the host the browser reached the console on.
CONSOLE_PUBLIC_URL = envstr("GATEWAY_PUBLIC_URL")

# Failed sign-ins are throttled per username and address (django-axes).
AXES_ENABLED = envbool("GATEWAY_LOGIN_THROTTLE", True)
AXES_FAILURE_LIMIT = envint("GATEWAY_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=envint("GATEWAY_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "console/locked_out.html"
AXES_VERBOSE = False

# The OpenAPI pages and schemas of /v1 and /api/v1 map the whole surface: public only off production.
GATEWAY_API_DOCS = envbool("GATEWAY_API_DOCS", GATEWAY_ENV != "production")

# Single sign-on (OpenID Connect) is on when a client id is set; see docs/config.md.
OIDC_RP_CLIENT_ID = envstr("GATEWAY_OIDC_CLIENT_ID")
OIDC_ENABLED = bool(OIDC_RP_CLIENT_ID)
OIDC_RP_CLIENT_SECRET = envstr("GATEWAY_OIDC_CLIENT_SECRET")
OIDC_OP_AUTHORIZATION_ENDPOINT = envstr("GATEWAY_OIDC_AUTHORIZATION_ENDPOINT")
OIDC_OP_TOKEN_ENDPOINT = envstr("GATEWAY_OIDC_TOKEN_ENDPOINT")
OIDC_OP_USER_ENDPOINT = envstr("GATEWAY_OIDC_USERINFO_ENDPOINT")
OIDC_OP_JWKS_ENDPOINT = envstr("GATEWAY_OIDC_JWKS_ENDPOINT")
OIDC_RP_SIGN_ALGO = envstr("GATEWAY_OIDC_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = envstr("GATEWAY_OIDC_SCOPES", "openid email profile")
OIDC_ROLES_CLAIM = envstr("GATEWAY_OIDC_ROLES_CLAIM", "gateway_roles")
OIDC_AUTHENTICATION_CALLBACK_URL = "console:oidc_callback"
LOGIN_REDIRECT_URL_FAILURE = "/console/login/?sso=failed"
if OIDC_ENABLED and not all(
    (OIDC_OP_AUTHORIZATION_ENDPOINT, OIDC_OP_TOKEN_ENDPOINT, OIDC_OP_JWKS_ENDPOINT)
):
    raise SettingError("GATEWAY_OIDC_CLIENT_ID is set: the OIDC endpoints must be set too")

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    *(["gateway_site.console.oidc.ConsoleOIDCBackend"] if OIDC_ENABLED else []),
]

# The management API's lists: limit/offset bounded to what SQL takes (an offset past bigint was a 500).
NINJA_PAGINATION_CLASS = "gateway_site.api.pagination.BoundedLimitOffsetPagination"

# --- the proxy ---------------------------------------------------------------------------
# Largest accepted request body, on every path; larger ones get a 413 in the API's own error
# format before they are read (gateway_site/body_guard.py), and so does a body not complete
# within the timeout after its head (408). Socket-level limits: gateway_site/server.py.
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("GATEWAY_MAX_BODY_BYTES", 8 * 1024 * 1024)
REQUEST_BODY_TIMEOUT_SECONDS = envfloat("GATEWAY_BODY_TIMEOUT_SECONDS", 30.0)
if DATA_UPLOAD_MAX_MEMORY_SIZE <= 0 or REQUEST_BODY_TIMEOUT_SECONDS <= 0:
    raise SettingError("GATEWAY_MAX_BODY_BYTES and GATEWAY_BODY_TIMEOUT_SECONDS must be > 0")
GATEWAY = ProxySettings(
    key_cache_seconds=envfloat("GATEWAY_KEY_CACHE_SECONDS", 1.0),
    routes_cache_seconds=envfloat("GATEWAY_ROUTES_CACHE_SECONDS", 2.0),
    upstream_timeout_seconds=envfloat("GATEWAY_UPSTREAM_TIMEOUT_SECONDS", 120.0),
    upstream_max_connections=envint("GATEWAY_UPSTREAM_MAX_CONNECTIONS", 512),
    upstream_transport=envstr("GATEWAY_UPSTREAM_TRANSPORT", "aiohttp"),
    audit_batch_max_size=envint("GATEWAY_AUDIT_BATCH_MAX_SIZE", 256),
    public_url=envstr("GATEWAY_PUBLIC_URL", "http://127.0.0.1:8000"),
    quota_store_timeout_seconds=envfloat("GATEWAY_QUOTA_STORE_TIMEOUT_SECONDS", 2.0),
    quota_store_max_connections=envint("GATEWAY_QUOTA_STORE_MAX_CONNECTIONS", 64),
    breaker_failures=envint("GATEWAY_BREAKER_FAILURES", 3),
    breaker_cooldown_seconds=envfloat("GATEWAY_BREAKER_COOLDOWN_SECONDS", 30.0),
)
if GATEWAY.breaker_failures < 0 or GATEWAY.breaker_cooldown_seconds < 0:
    raise SettingError("GATEWAY_BREAKER_FAILURES and GATEWAY_BREAKER_COOLDOWN_SECONDS must be >= 0")
if GATEWAY.upstream_transport not in ("aiohttp", "httpx"):
    raise SettingError("GATEWAY_UPSTREAM_TRANSPORT must be 'aiohttp' or 'httpx'")
# Where the gateway may send provider credentials (docs/config.md, "Egress"): cloud metadata and
# link-local never; loopback and private ranges only when allowed; with a list, only its hosts.
try:
    GATEWAY_EGRESS = EgressPolicy.parse(
        envlist("GATEWAY_EGRESS_ALLOW", []),
        allow_private=envbool("GATEWAY_EGRESS_ALLOW_PRIVATE", False),
        allow_loopback=envbool("GATEWAY_EGRESS_ALLOW_LOOPBACK", False),
    )
except ValueError as exc:
    raise SettingError(f"GATEWAY_EGRESS_ALLOW: {exc}") from exc
# Response cache (docs/caching.md): how often each worker reads the semantic entries other
# processes wrote; how long a cache read may take before it counts as a miss; the bound of the
# in-process store used without Redis.
GATEWAY_CACHE_SYNC_SECONDS = envfloat("GATEWAY_CACHE_SYNC_SECONDS", 0.5)
GATEWAY_CACHE_TIMEOUT_SECONDS = envfloat("GATEWAY_CACHE_TIMEOUT_SECONDS", 0.25)
GATEWAY_CACHE_MEMORY_ENTRIES = envint("GATEWAY_CACHE_MEMORY_ENTRIES", 10_000)
# Guardrails: a spaCy model (installed package name or path) for names and locations in PII
# detection; "auto" uses en_core_web_lg/md/sm when installed, "" never (patterns only).
GUARDRAILS_SPACY_MODEL = envstr("GATEWAY_GUARDRAILS_SPACY_MODEL", "auto")
# The OCR program images in requests are read with (docs/guardrails.md, "Images"); when it is
# missing, each policy's images fallback applies.
GUARDRAILS_TESSERACT = envstr("GATEWAY_GUARDRAILS_TESSERACT", "tesseract")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {
            # Tracebacks without what PostgreSQL quotes of a refused row (prompts, answers).
            "()": "gateway_site.log_format.LogFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        }
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": envstr("GATEWAY_LOG_LEVEL", "INFO")},
    "loggers": {
        "httpx": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        "django.request": {"level": "ERROR"},
    },
}
