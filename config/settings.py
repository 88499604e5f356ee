"""Django settings, read from the environment with working defaults.

No configuration at all gives the embedded default: SQLite and a file-system Celery broker under
``PREFLAB_DATA_DIR`` (``./var``). Production sets ``DATABASE_URL`` (PostgreSQL) and ``CELERY_BROKER_URL``
(Redis), ``SECRET_KEY``, ``DEBUG=0`` and ``ALLOWED_HOSTS``; ``manage.py check --deploy`` is then clean.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    """An integer setting; a value that is not one falls back to ``default`` (as the readers used to)."""
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DATA_DIR = Path(os.environ.get("PREFLAB_DATA_DIR", BASE_DIR / "var")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)
# Where dataset snapshots, trained models and other artifacts live (a shared volume in production).
ARTIFACT_DIR = Path(os.environ.get("PREFLAB_ARTIFACT_DIR", DATA_DIR / "artifacts")).resolve()
# Shared preference data beside the checkout (tests, demo, benchmarks read it; never copied in).
SHARED_DATA_DIR = Path(os.environ.get("PREFLAB_SHARED_DATA", BASE_DIR.parent / "shared" / "data"))

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise RuntimeError("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "dev-only-insecure-key-change-me"  # noqa: S105 - development default, refused in production
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
# How many reverse proxies in front of the web app append the client's address to X-Forwarded-For. 0 (the
# default): the socket's peer (REMOTE_ADDR) is the client. N: the N-th address from the right is, so the
# login limit counts real clients behind a load balancer instead of the balancer. Addresses a client wrote
# itself (further left) are never trusted. Set it to exactly the number of proxies you run.
try:
    TRUSTED_PROXIES = max(0, int(os.environ.get("PREFLAB_TRUSTED_PROXIES", "0")))
except ValueError as exc:
    raise ImproperlyConfigured("PREFLAB_TRUSTED_PROXIES must be a whole number of proxies") from exc

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc served from our own static files (works offline)
    "annotation",
    "training",
    "rewardsvc",
    "demo.apps.DemoAppConfig",  # the end-to-end demo command; above the three apps
]

MIDDLEWARE = [
    "config.observability.PrometheusMiddleware",
    "config.middleware.RequestSizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
                "config.context_processors.site_context",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'preflab.sqlite3'}",
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # WAL + a busy timeout let the web process and the worker process share the embedded database.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "static"

# Uploads: files are streamed to disk above this size and refused above the import limit.
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("PREFLAB_MAX_REQUEST_BYTES", 20 * 1024 * 1024))
PREFLAB_MAX_IMPORT_BYTES = int(os.environ.get("PREFLAB_MAX_IMPORT_BYTES", 512 * 1024 * 1024))

# --- Work limits --------------------------------------------------------------------------------------------
# Caps on lists and counts a client sends, so that a small request cannot ask for work (rows, memory, CPU)
# that grows faster than its bytes. Each is listed, with what a client gets past it, in docs/security.md.
# K-way ranking: a project's max_ranking_length (default below) may be raised up to the hard maximum; a
# ranking of n candidates writes n*(n-1)/2 judgments.
PREFLAB_RANKING_LENGTH_DEFAULT = int(os.environ.get("PREFLAB_RANKING_LENGTH_DEFAULT", "8"))
PREFLAB_MAX_RANKING_LENGTH = int(os.environ.get("PREFLAB_MAX_RANKING_LENGTH", "16"))
# Imports: candidates one record may carry, tasks one prompt may get from one import, records per import.
PREFLAB_MAX_RESPONSES_PER_RECORD = int(os.environ.get("PREFLAB_MAX_RESPONSES_PER_RECORD", "64"))
PREFLAB_MAX_TASKS_PER_PROMPT = int(os.environ.get("PREFLAB_MAX_TASKS_PER_PROMPT", "500"))
PREFLAB_MAX_IMPORT_RECORDS = int(os.environ.get("PREFLAB_MAX_IMPORT_RECORDS", "2000000"))
# Training configs (training/limits.py maps each config field to one of these).
PREFLAB_MAX_TRAINING_STEPS = int(os.environ.get("PREFLAB_MAX_TRAINING_STEPS", "100000"))
PREFLAB_MAX_TRAINING_EPOCHS = int(os.environ.get("PREFLAB_MAX_TRAINING_EPOCHS", "100"))
PREFLAB_MAX_BATCH_SIZE = int(os.environ.get("PREFLAB_MAX_BATCH_SIZE", "1024"))
PREFLAB_MAX_SAMPLES_PER_PROMPT = int(os.environ.get("PREFLAB_MAX_SAMPLES_PER_PROMPT", "64"))
PREFLAB_MAX_SEQUENCE_TOKENS = int(os.environ.get("PREFLAB_MAX_SEQUENCE_TOKENS", "32768"))
PREFLAB_MAX_POLICY_PROMPTS = int(os.environ.get("PREFLAB_MAX_POLICY_PROMPTS", "100000"))
PREFLAB_MAX_TRAINING_EXAMPLES = int(os.environ.get("PREFLAB_MAX_TRAINING_EXAMPLES", "10000000"))
PREFLAB_MAX_BATTLE_OVERLAP = int(os.environ.get("PREFLAB_MAX_BATTLE_OVERLAP", "100"))
# Policy runs in one battle of finished runs (each adds a model: tasks grow with the square of the count).
PREFLAB_MAX_BATTLE_RUNS = int(os.environ.get("PREFLAB_MAX_BATTLE_RUNS", "8"))
PREFLAB_MAX_LORA_RANK = int(os.environ.get("PREFLAB_MAX_LORA_RANK", "256"))
# Reward-model sweeps: trials per sweep (each one a training run) and trials in flight at once.
PREFLAB_MAX_SWEEP_TRIALS = int(os.environ.get("PREFLAB_MAX_SWEEP_TRIALS", "64"))
PREFLAB_MAX_SWEEP_PARALLELISM = int(os.environ.get("PREFLAB_MAX_SWEEP_PARALLELISM", "8"))
# Capability gate: items per task set and bootstrap resamples per score (training/policy/capability).
PREFLAB_MAX_GATE_ITEMS = int(os.environ.get("PREFLAB_MAX_GATE_ITEMS", "1000"))
PREFLAB_MAX_GATE_BOOTSTRAP = int(os.environ.get("PREFLAB_MAX_GATE_BOOTSTRAP", "10000"))
# ... lm-evaluation-harness tasks per gate (each one a harness run per model), and the server directories
# a gate's harness_include_path may name (task YAMLs can name Python functions); comma-separated.
PREFLAB_MAX_GATE_HARNESS_TASKS = int(os.environ.get("PREFLAB_MAX_GATE_HARNESS_TASKS", "8"))
PREFLAB_HARNESS_TASK_ROOTS = [
    Path(p).resolve() for p in env_list("PREFLAB_HARNESS_TASK_ROOTS", str(DATA_DIR / "harness_tasks"))
]
# Members of one ensemble reward model: each is a full training run's work.
PREFLAB_MAX_ENSEMBLE_SIZE = int(os.environ.get("PREFLAB_MAX_ENSEMBLE_SIZE", "8"))
# Server paths an import API `source` may name (after symlinks are resolved); comma-separated. Not the
# artifact directory: it holds every project's snapshots.
PREFLAB_IMPORT_ROOTS = [
    Path(p).resolve() for p in env_list("PREFLAB_IMPORT_ROOTS", f"{SHARED_DATA_DIR},{DATA_DIR / 'imports'}")
]

# --- PrefLab settings read by the apps (docs/operations.md); every environment read lives here ----------
# Requests per minute for API tokens without their own rate_limit_per_minute (0: no limit).
PREFLAB_API_RATE_LIMIT = max(0, env_int("PREFLAB_API_RATE_LIMIT", 0))
# Password of the demo users made by `make run` / the end-to-end demo.
PREFLAB_DEMO_PASSWORD = os.environ.get("PREFLAB_DEMO_PASSWORD", "preflab-demo")
# Automatic retraining after this many new judgments since a project's last snapshot (0: off).
PREFLAB_RETRAIN_AFTER_JUDGMENTS = env_int("PREFLAB_RETRAIN_AFTER_JUDGMENTS", 500)
# Seconds between a running job's heartbeats; beat periods of the reaper and the retraining check.
PREFLAB_RUN_HEARTBEAT_S = float(os.environ.get("PREFLAB_RUN_HEARTBEAT_S", "10"))
PREFLAB_REAP_EVERY_S = float(os.environ.get("PREFLAB_REAP_EVERY_S", "60"))
PREFLAB_RETRAIN_CHECK_EVERY_S = float(os.environ.get("PREFLAB_RETRAIN_CHECK_EVERY_S", "300"))
# Live agreement of each active reward model with new human votes: refreshed this often (seconds); the
# agreement-drop retraining trigger needs at least this many post-snapshot A/B votes to act.
PREFLAB_LIVE_AGREEMENT_EVERY_S = float(os.environ.get("PREFLAB_LIVE_AGREEMENT_EVERY_S", "900"))
PREFLAB_LIVE_AGREEMENT_MIN_VOTES = env_int("PREFLAB_LIVE_AGREEMENT_MIN_VOTES", 200)
# The reward server policy runs (OpenRLHF export) talk to by default.
PREFLAB_REWARD_SERVER_URL = os.environ.get("PREFLAB_REWARD_SERVER_URL", "http://127.0.0.1:8100")
# Spot checks score through this reward server when set (else in-process), with this token.
PREFLAB_RM_SERVER_URL = os.environ.get("PREFLAB_RM_SERVER_URL", "")
PREFLAB_RM_SERVER_TOKEN = os.environ.get("PREFLAB_RM_SERVER_TOKEN", "")
# Experiment trackers TRL runs also report to (training/tracking.py): "none", or any of "tensorboard",
# "mlflow" (comma-separated). PrefLab's own run curves are written either way.
PREFLAB_REPORT_TO = env_list("PREFLAB_REPORT_TO", "none")
# MLflow tracking URI (a server, or a store URI); empty: a local file store at $PREFLAB_DATA_DIR/mlruns.
PREFLAB_MLFLOW_TRACKING_URI = os.environ.get("PREFLAB_MLFLOW_TRACKING_URI", "")
# TensorBoard event files (one folder per run); empty: $PREFLAB_DATA_DIR/tensorboard.
PREFLAB_TENSORBOARD_DIR = os.environ.get("PREFLAB_TENSORBOARD_DIR", "")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "annotation.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Per-token request limit (the token's rate_limit_per_minute, else PREFLAB_API_RATE_LIMIT; 0 = none).
    "DEFAULT_THROTTLE_CLASSES": ["annotation.api.throttling.TokenRateThrottle"],
    "DEFAULT_PARSER_CLASSES": [
        "annotation.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "config.schema.PrefLabAutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "annotation.api.pagination.DefaultCursorPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "annotation.api.errors.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "PrefLab API",
    "DESCRIPTION": "Human-preference annotation, Bradley-Terry datasets, reward-model training and serving.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # The API docs page loads Swagger UI from drf-spectacular-sidecar's static files, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Every operation's error statuses with the one error envelope (config/schema.py, docs/api.md).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.schema.document_error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "PairingStrategyEnum": "annotation.models.PairingStrategy",
        "ChoiceEnum": "annotation.models.Choice",
        "RoleEnum": "annotation.models.Role",
        "JobStatusEnum": "training.models.JobStatus",
    },
}

# --- Cache ----------------------------------------------------------------------------------------------
# The cache holds the login limiter's counts. Default: local memory, one per process (fine for `make run`).
# With several web processes or replicas set PREFLAB_CACHE_URL=redis://host:6379/1 so they share counts.
CACHE_URL = os.environ.get("PREFLAB_CACHE_URL", "").strip()
if CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "preflab",
        }
    }
elif CACHE_URL:
    raise ImproperlyConfigured(f"PREFLAB_CACHE_URL must be a redis:// URL, not {CACHE_URL!r}")

# --- Celery -------------------------------------------------------------------------------------------
# No CELERY_BROKER_URL: kombu's file-system transport, so `make run` needs no server but still runs a
# real worker process. Production: redis://...
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_DIR = DATA_DIR / "celery-broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("out", "processed", "control"):
        (CELERY_BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "out"),
        "data_folder_out": str(CELERY_BROKER_DIR / "out"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
        # kombu polls the folder (default every 1 s) and, with prefetch 1 and late acks, takes about one
        # message per poll: a queued job would wait up to a second and a burst of periodic tasks could
        # queue up behind each other. Listing a small folder ten times a second costs nothing.
        "polling_interval": 0.1,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 6 * 3600}
# Job state lives in PrefLab's own tables (status, progress, metrics), so no result backend is needed;
# one can be set (e.g. redis://, file:///path) for tools that wait on task results.
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or None
CELERY_TASK_IGNORE_RESULT = CELERY_RESULT_BACKEND is None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
# Training jobs (named "training.run.*") go to their own queue so long runs never block snapshots or
# quality jobs on the default queue.
CELERY_TASK_ROUTES = {"training.run.*": {"queue": "training"}}
# Fail fast when the broker is down: the job row stays queued and is re-published later (config.jobs).
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BEAT_SCHEDULE: dict = {}

# --- Quality reports ------------------------------------------------------------------------------------
# Quality statistics are computed by a job (annotation.quality.compute_stale_reports, every
# PREFLAB_QUALITY_REPORT_EVERY_S seconds, and "Recompute now") and pages read the stored report. A project
# with at most this many counted judgments has a stale report recomputed while its page waits (well under a
# second); 0 turns that off.
PREFLAB_QUALITY_INLINE_MAX_JUDGMENTS = int(os.environ.get("PREFLAB_QUALITY_INLINE_MAX_JUDGMENTS", "10000"))
PREFLAB_QUALITY_REPORT_EVERY_S = float(os.environ.get("PREFLAB_QUALITY_REPORT_EVERY_S", "600"))

# --- Production hardening (all on when DEBUG is off) ---------------------------------------------------
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"

# LOG_FORMAT=json gives one JSON object per line (for log shippers); plain text otherwise.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "config.observability.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
