"""Stratus settings: one module, driven by the environment.

Without DATABASE_URL the database is SQLite under var/; without CELERY_BROKER_URL the
Celery tasks run inside the web process. Every such default has a real counterpart
(Postgres, Redis, a separate worker) that CI exercises.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("STRATUS_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off", ""}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean, not {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from exc


def _secret_key() -> str:
    if key := os.environ.get("DJANGO_SECRET_KEY"):
        return key
    # Development: keep one generated key under var/ so sessions survive restarts.
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",")
CSRF_TRUSTED_ORIGINS = [
    origin for origin in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if origin
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "csp",
    "console",
    "functions",
    "invocations",
    "monitoring",
    "api",
]

MIDDLEWARE = [
    # First: Lambda API requests need none of the console's middlewares.
    "console.middleware.LambdaApiMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "console.urls"
WSGI_APPLICATION = "console.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "console.context_processors.console",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'stratus.sqlite3'}"
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A connection pool per process: Celery closes a task's connections when it ends, and
    # with a pool that hands them back instead of opening a new server backend per task.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env_int("DATABASE_POOL_MIN_SIZE", 2),
        "max_size": env_int("DATABASE_POOL_MAX_SIZE", 20),
        "timeout": 10,
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = 60
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "functions:list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve straight from the source folders when collectstatic has not run (development, tests).
WHITENOISE_USE_FINDERS = True

SESSION_COOKIE_HTTPONLY = True
# Sessions are read on every request; keep them in the process's memory cache, backed by
# the database.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
# Test events and deploys carry up to 6 MB of JSON (Lambda's synchronous payload limit).
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024 * 1024

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "script-src": ["'self'"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("STRATUS_LOG_LEVEL", "INFO")},
}

# --- Celery -------------------------------------------------------------------------------
EMBEDDED_WORKER = not os.environ.get("CELERY_BROKER_URL")
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or "memory://"
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or (
    None if EMBEDDED_WORKER else CELERY_BROKER_URL
)
CELERY_TASK_ALWAYS_EAGER = EMBEDDED_WORKER
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 600
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {"invocations.tasks.*": {"queue": "invocations"}}
# Longer than the longest function timeout (900 s) plus start-up, so a running invocation
# is never redelivered while it still runs.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 1200}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"visibility_timeout": 1200}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Modules every worker imports at start besides the apps' tasks: the provisioned
# concurrency reconciler starts with the worker.
CELERY_IMPORTS = ["invocations.provisioning"]
# How often the scheduler sweeps the invocation records (seconds): the whole sweep (lost
# messages, overdue records, dead workers), and the quick look for dead workers' invocations.
STRATUS_SWEEP_INTERVAL = float(os.environ.get("STRATUS_SWEEP_INTERVAL") or 30)
STRATUS_ORPHAN_SWEEP_INTERVAL = float(os.environ.get("STRATUS_ORPHAN_SWEEP_INTERVAL") or 5)
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "reap-stale-invocations": {
        "task": "invocations.tasks.sweep_invocations_task",
        "schedule": STRATUS_SWEEP_INTERVAL,
        "options": {"expires": max(15.0, 1.5 * STRATUS_SWEEP_INTERVAL)},
    },
    "hand-back-orphaned-invocations": {
        "task": "invocations.tasks.hand_back_orphans_task",
        "schedule": STRATUS_ORPHAN_SWEEP_INTERVAL,
        "options": {"expires": max(15.0, 3 * STRATUS_ORPHAN_SWEEP_INTERVAL)},
    },
}

# --- Stratus ------------------------------------------------------------------------------
STRATUS_REGION = os.environ.get("STRATUS_REGION", "us-east-1")
# "auto": the Docker backend where a Docker engine answers and has the runtime image, else
# the process backend (which does not isolate; it logs why it was chosen). Or a class path.
STRATUS_SANDBOX: dict[str, Any] = {
    "BACKEND": os.environ.get("STRATUS_SANDBOX_BACKEND", "auto"),
    "OPTIONS": {},
}
# Where the worker unpacks code artifacts (content-addressed) and keeps per-EE /tmp folders.
STRATUS_CODE_CACHE_DIR = VAR_DIR / "code"
STRATUS_SANDBOX_DIR = VAR_DIR / "sandboxes"
# Idle execution environments are stopped after this many seconds.
STRATUS_EE_KEEP_ALIVE = env_int("STRATUS_EE_KEEP_ALIVE", 600)
# The configured memory of all live execution environments of a worker stays within this
# (default: 75% of the host's physical memory); idle ones are evicted to make room.
STRATUS_EE_MEMORY_BUDGET_MB = env_int(
    "STRATUS_EE_MEMORY_BUDGET_MB",
    os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 3 // 4 // 2**20,
)
# Execution environments a worker starts at once, at most (default: two per CPU).
STRATUS_EE_MAX_CONCURRENT_COLD_STARTS = env_int(
    "STRATUS_EE_MAX_CONCURRENT_COLD_STARTS", 2 * (os.cpu_count() or 1)
)
# Longest an invocation waits for a busy environment of its function that is about to be
# free, instead of starting another one (milliseconds; never longer than a measured start).
STRATUS_EE_BURST_WAIT_MS = env_int("STRATUS_EE_BURST_WAIT_MS", 100)
# Longest an invocation waits for memory or a cold-start slot before it fails (seconds).
STRATUS_EE_CAPACITY_WAIT = env_int("STRATUS_EE_CAPACITY_WAIT", 10)
# Pre-warmed generic environments (stem cells) to keep idle, per runtime, memory size and
# optionally ephemeral storage: "python3.11:128=2,python3.11:512:1024=1"; "" for none.
# Unset: two of python3.11 at 128 MB on the Docker backend, none on the process backend.
STRATUS_EE_PREWARM: str | None = os.environ.get("STRATUS_EE_PREWARM")
# Ports the worker's Runtime API servers (one per execution environment) listen on; the
# Docker backend's firewall lets functions reach only these on the host.
STRATUS_RUNTIME_API_PORTS = os.environ.get("STRATUS_RUNTIME_API_PORTS", "20000-29999")
# Key for secrets stored at rest (access key secrets); derived from SECRET_KEY when empty.
STRATUS_SECRETS_KEY = os.environ.get("STRATUS_SECRETS_KEY", "")
# Bytes of log output kept per invocation before a truncation marker.
STRATUS_MAX_LOG_BYTES = env_int("STRATUS_MAX_LOG_BYTES", 256 * 1024)
# Queued invocations older than this are republished by the sweeper (lost broker message).
STRATUS_REQUEUE_AFTER = env_int("STRATUS_REQUEUE_AFTER", 120)
# Each worker process marks itself alive this often (seconds); one unseen for
# STRATUS_WORKER_LOST_AFTER has died, and its running invocations are handed back:
# asynchronous ones run again (at most STRATUS_WORKER_LOST_MAX_ATTEMPTS attempts in all),
# synchronous ones fail with a clear error.
STRATUS_WORKER_HEARTBEAT = float(os.environ.get("STRATUS_WORKER_HEARTBEAT") or 2)
STRATUS_WORKER_LOST_AFTER = float(os.environ.get("STRATUS_WORKER_LOST_AFTER") or 10)
STRATUS_WORKER_LOST_MAX_ATTEMPTS = env_int("STRATUS_WORKER_LOST_MAX_ATTEMPTS", 3)
# Whether a worker's writes (its claims, the invocations it finished) may commit without
# waiting for the WAL to reach disk. Off: in the load benchmark it made no measurable
# difference, and a Postgres crash (not a clean restart) can lose the last fraction of a
# second of relaxed commits: a lost claim runs an event again, a lost finish leaves a record
# that disagrees with the answer its caller got (see tests/chaos/test_postgres_crash.py).
STRATUS_WORKER_RELAXED_COMMITS = env_bool("STRATUS_WORKER_RELAXED_COMMITS", default=False)
# A worker asked to stop (SIGTERM) takes no new invocations and lets the running ones finish
# for up to this long (seconds); what is still running then is handed back.
STRATUS_WORKER_DRAIN_TIMEOUT = float(os.environ.get("STRATUS_WORKER_DRAIN_TIMEOUT") or 30)
# Invocations of one account in flight at once (Lambda's default account limit); functions
# reserve parts of it, the rest is the unreserved pool.
STRATUS_ACCOUNT_CONCURRENCY_LIMIT = env_int("STRATUS_ACCOUNT_CONCURRENCY_LIMIT", 1000)
# Where the concurrency leases live (shared by all web and worker processes): the Redis
# broker by default; empty keeps them in the process (embedded mode).
STRATUS_CONCURRENCY_REDIS_URL = os.environ.get("STRATUS_CONCURRENCY_REDIS_URL") or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else ""
)
# The invocation lane (invocations.lane): the Redis lists that carry invocations to the
# workers and answers back to synchronous callers. The Redis broker's, unless set.
STRATUS_LANE_REDIS_URL = os.environ.get("STRATUS_LANE_REDIS_URL") or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else ""
)
# Threads of a worker taking invocations off the lane, where its Celery concurrency is unknown.
STRATUS_LANE_THREADS = env_int("STRATUS_LANE_THREADS", 8)
# How often each worker brings its provisioned execution environments in line with the
# provisioned concurrency configurations (seconds).
STRATUS_PROVISIONED_RECONCILE_SECONDS = float(
    os.environ.get("STRATUS_PROVISIONED_RECONCILE_SECONDS") or 5
)
# Multiplies Lambda's delays before an asynchronous event's retries (1 and 2 minutes); tests
# make them short.
STRATUS_ASYNC_RETRY_DELAY_SCALE = float(os.environ.get("STRATUS_ASYNC_RETRY_DELAY_SCALE") or 1)
