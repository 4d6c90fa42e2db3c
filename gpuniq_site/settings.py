"""Settings for the GPUniq gateway, read from the environment.

Embedded default (nothing set): SQLite under var/, in-process cache and rate limits,
a filesystem Celery broker. Production: DATABASE_URL (PostgreSQL) + REDIS_URL.
"""

import secrets
from pathlib import Path

import dj_database_url

from django.core.exceptions import ImproperlyConfigured

from . import logs
from .env import envbool, envdecimal, envfloat, envint, envlist, envstr

SITE_DIR = Path(__file__).resolve().parent  # templates/ and static/ ship inside this package
BASE_DIR = SITE_DIR.parent  # the checkout, or site-packages in an installed (non-editable) layout
IN_CHECKOUT = (BASE_DIR / "manage.py").exists()
# Files the embedded default writes: beside manage.py in a checkout, under the working directory when
# installed (never into site-packages).
VAR_DIR = Path(envstr("GPUNIQ_VAR_DIR", str((BASE_DIR if IN_CHECKOUT else Path.cwd()) / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once into var/ for development."""
    configured = envstr("SECRET_KEY")
    if configured:
        return configured
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = envbool("DEBUG", False)
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])
PORT = envint("PORT", 8000)
PUBLIC_BASE_URL = envstr("PUBLIC_BASE_URL", f"http://127.0.0.1:{PORT}")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "django_htmx",
    "accounts",
    "billing",
    "llm",
    "media_jobs",
]

# The middleware is declared once, in two named groups. API_MIDDLEWARE runs for every request under
# /v1/, on both of its paths: the lean ASGI path of the async views (gpuniq_site.fast_asgi) and the
# Django handler of the DRF views (gpuniq_site.api_handler), both built from this list. Its entries
# must be async-capable (the lean path never leaves the event loop; a sync process_exception runs on
# it). SITE_MIDDLEWARE adds what the pages need (sessions, CSRF, auth); pages get both, API first.
API_MIDDLEWARE = [
    "gpuniq_site.middleware.RequestIdMiddleware",
    "gpuniq_site.middleware.ApiErrorMiddleware",
]
SITE_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "gpuniq_site.middleware.ApiAwareCsrfMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]
MIDDLEWARE = [*API_MIDDLEWARE, *SITE_MIDDLEWARE]

ROOT_URLCONF = "gpuniq_site.urls"
ASGI_APPLICATION = "gpuniq_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [SITE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "builtins": ["billing.templatetags.money"],  # {{ amount|usd }} everywhere
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "gpuniq_site.context_processors.site",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------
DATABASE_URL = envstr("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=envint("DB_CONN_MAX_AGE", 600), conn_health_checks=True
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while the worker writes; the timeout rides out short locks.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
IS_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")
DB_POOL_MAX = envint("DB_POOL_MAX", 20)
if IS_POSTGRES and DB_POOL_MAX > 0:
    # psycopg's pool: threads borrow a connection and give it back on close, so N threads
    # share at most DB_POOL_MAX server connections (PostgreSQL allows ~100 in all).
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DB_POOL_MAX,
        "timeout": envfloat("DB_POOL_TIMEOUT", 30.0),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, Redis, Celery -------------------------------------------------
REDIS_URL = envstr("REDIS_URL")
HAS_REDIS = bool(REDIS_URL)
if HAS_REDIS:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

_broker_dir = VAR_DIR / "broker"
CELERY_BROKER_URL = envstr("CELERY_BROKER_URL", REDIS_URL or "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        "control_folder": str(_broker_dir / "control"),
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    else {"visibility_timeout": 3600}
)
if CELERY_BROKER_URL.startswith("filesystem"):
    (_broker_dir / "processed").mkdir(parents=True, exist_ok=True)
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Queues and the beat schedule's intervals: gpuniq_site.celery (read there, before settings load).
# A worker's database pool: 0 = sized from its own concurrency (gpuniq_site.worker_pool).
GPUNIQ_WORKER_DB_POOL = envint("GPUNIQ_WORKER_DB_POOL", 0)

# --- Auth -------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/dashboard/"
LOGOUT_REDIRECT_URL = "/"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = envbool("SECURE_COOKIES", not DEBUG and PUBLIC_BASE_URL.startswith("https"))
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
EMAIL_BACKEND = envstr("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")

# --- Static files -----------------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [SITE_DIR / "static"]
STATIC_ROOT = Path(envstr("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Hashed names (cached for a year, `immutable`) and .gz/.br siblings, written by `collectstatic`
    # (run by `make run`, the test session and the deploy's release step).
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_ROOT = Path(envstr("MEDIA_ROOT", str(VAR_DIR / "media")))

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# --- REST framework -----------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.drf.APIKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["gpuniq_site.drf.SafeJSONParser"],
    "EXCEPTION_HANDLER": "gpuniq_site.drf.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "GPUniq native LLM API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

# --- Product settings -------------------------------------------------------
GPUNIQ_SANDBOX = envbool("GPUNIQ_SANDBOX", False)
GPUNIQ_DEFAULT_RPM = envint("GPUNIQ_DEFAULT_RPM", 120)
GPUNIQ_KEY_CACHE_SECONDS = envint("GPUNIQ_KEY_CACHE_SECONDS", 60)
GPUNIQ_HOLD_TIMEOUT_SECONDS = envint("GPUNIQ_HOLD_TIMEOUT_SECONDS", 900)
GPUNIQ_STREAMING_REQUIRED_ABOVE = envint("GPUNIQ_STREAMING_REQUIRED_ABOVE", 4096)
GPUNIQ_RATE_LIMIT_FAIL_OPEN = envbool("GPUNIQ_RATE_LIMIT_FAIL_OPEN", True)
# Redis unreachable: each process limits alone with limit / GPUNIQ_APP_PROCESSES (set it to the number
# of app processes), and tries Redis again every GPUNIQ_REDIS_RETRY_SECONDS.
GPUNIQ_APP_PROCESSES = envint("GPUNIQ_APP_PROCESSES", 1)
GPUNIQ_REDIS_RETRY_SECONDS = envfloat("GPUNIQ_REDIS_RETRY_SECONDS", 2.0)
GPUNIQ_REDIS_MAX_CONNECTIONS = envint("GPUNIQ_REDIS_MAX_CONNECTIONS", 64)  # per process and event loop
GPUNIQ_NEGATIVE_KEY_CACHE_SECONDS = envint("GPUNIQ_NEGATIVE_KEY_CACHE_SECONDS", 30)
GPUNIQ_METRICS_TOKEN = envstr("GPUNIQ_METRICS_TOKEN")  # /metrics: bearer token; unset = loopback only
GPUNIQ_METRICS_QUEUES = envlist(
    "GPUNIQ_METRICS_QUEUES",
    [
        envstr("GPUNIQ_JOBS_QUEUE", "jobs"),  # gpuniq_site.celery
        envstr("GPUNIQ_PERIODIC_QUEUE", "periodic"),
    ],
)
GPUNIQ_CATALOG_TTL_SECONDS = envfloat(
    "GPUNIQ_CATALOG_TTL_SECONDS", 10.0
)  # per-process snapshot of the catalog
GPUNIQ_CATALOG_PATH = Path(envstr("GPUNIQ_CATALOG_PATH", str(BASE_DIR / "llm" / "catalog.toml")))
GPUNIQ_MAX_BODY_BYTES = envint("GPUNIQ_MAX_BODY_BYTES", 25 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = GPUNIQ_MAX_BODY_BYTES
GPUNIQ_UPSTREAM_CONNECT_TIMEOUT = envfloat("GPUNIQ_UPSTREAM_CONNECT_TIMEOUT", 10.0)
GPUNIQ_STREAM_TOTAL_TIMEOUT = envfloat("GPUNIQ_STREAM_TOTAL_TIMEOUT", 600.0)
GPUNIQ_KEEPALIVE_SECONDS = envfloat("GPUNIQ_KEEPALIVE_SECONDS", 15.0)

STRIPE_SECRET_KEY = envstr("STRIPE_SECRET_KEY")
STRIPE_WEBHOOK_SECRET = envstr("STRIPE_WEBHOOK_SECRET")
STRIPE_API_BASE = envstr("STRIPE_API_BASE")

# One JSON object per line with the request id (gpuniq_site.logs), by default with PostgreSQL
# (production); plain text for the embedded default.
GPUNIQ_LOG_FORMAT = envstr("GPUNIQ_LOG_FORMAT", "json" if IS_POSTGRES else "plain")
if GPUNIQ_LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfigured(f"GPUNIQ_LOG_FORMAT={GPUNIQ_LOG_FORMAT!r}: use json or plain")
LOGGING = logs.config(GPUNIQ_LOG_FORMAT, envstr("LOG_LEVEL", "INFO"))
GPUNIQ_STREAM_IDLE_TIMEOUT = envfloat("GPUNIQ_STREAM_IDLE_TIMEOUT", 120.0)
# OpenAI-compatible pass-through streams relayed in one loop from vendor to client socket
# (llm.providers.openai_relay); off: every stream takes the generic path.
GPUNIQ_STREAM_FUSED_RELAY = envbool("GPUNIQ_STREAM_FUSED_RELAY", True)
# A young-generation garbage collection after this many new container objects (Python's default:
# 700). At hundreds of open streams the default collects every few milliseconds and walks every
# stream's live objects each time; 0 keeps Python's default.
GPUNIQ_GC_YOUNG_THRESHOLD = envint("GPUNIQ_GC_YOUNG_THRESHOLD", 50_000)

# --- dashboard ---
# Login throttling: this many failed sign-ins per (email, client IP) within the window blocks that
# pair only, so an attacker elsewhere cannot lock a user out.
LOGIN_FAILURES_ALLOWED = envint("LOGIN_FAILURES_ALLOWED", 5)
LOGIN_FAILURE_WINDOW_SECONDS = envint("LOGIN_FAILURE_WINDOW_SECONDS", 15 * 60)
CSRF_COOKIE_HTTPONLY = True  # htmx sends the token from the page (hx-headers), never from JS cookies
SESSION_COOKIE_AGE = envint("SESSION_COOKIE_AGE", 14 * 24 * 3600)
PASSWORD_RESET_TIMEOUT = envint("PASSWORD_RESET_TIMEOUT", 3 * 3600)
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", "GPUniq <no-reply@localhost>")
# Stripe top-ups: presets and bounds in whole USD; webhooks older than the tolerance are refused.
TOPUP_PRESETS_USD = [int(v) for v in envlist("TOPUP_PRESETS_USD", ["5", "10", "25", "50"])]
TOPUP_MIN_USD = envint("TOPUP_MIN_USD", 5)
TOPUP_MAX_USD = envint("TOPUP_MAX_USD", 1000)
# Credit every new account gets at sign-up (USD, through a ledger adjustment); 0 = none.
SIGNUP_CREDIT_USD = envdecimal("SIGNUP_CREDIT_USD", "0")
STRIPE_WEBHOOK_TOLERANCE_SECONDS = envint("STRIPE_WEBHOOK_TOLERANCE_SECONDS", 300)
STRIPE_TIMEOUT_SECONDS = envfloat("STRIPE_TIMEOUT_SECONDS", 20.0)
# YooKassa (RUB): on when shop id, secret key and a rate are set. The rate is RUB per USD, fixed on
# each payment when it is created (the rate source for now: this setting). Notifications are accepted
# only from YooKassa's published networks (https://yookassa.ru/developers/using-api/webhooks#ip);
# YOOKASSA_FORWARDED_HOPS > 0 reads the client address from X-Forwarded-For behind that many proxies.
YOOKASSA_SHOP_ID = envstr("YOOKASSA_SHOP_ID")
YOOKASSA_SECRET_KEY = envstr("YOOKASSA_SECRET_KEY")
YOOKASSA_API_BASE = envstr("YOOKASSA_API_BASE", "https://api.yookassa.ru/v3")
YOOKASSA_USD_RATE = envstr("YOOKASSA_USD_RATE")
YOOKASSA_NOTIFICATION_IPS = envlist(
    "YOOKASSA_NOTIFICATION_IPS",
    [
        "185.71.76.0/27",
        "185.71.77.0/27",
        "77.75.153.0/25",
        "77.75.156.11",
        "77.75.156.35",
        "77.75.154.128/25",
        "2a02:5180::/32",
    ],
)
YOOKASSA_FORWARDED_HOPS = envint("YOOKASSA_FORWARDED_HOPS", 0)
# Crypto through a self-hosted BTCPay Server (Greenfield API): invoices priced in USD.
BTCPAY_URL = envstr("BTCPAY_URL")
BTCPAY_API_KEY = envstr("BTCPAY_API_KEY")
BTCPAY_STORE_ID = envstr("BTCPAY_STORE_ID")
BTCPAY_WEBHOOK_SECRET = envstr("BTCPAY_WEBHOOK_SECRET")
PAYMENT_TIMEOUT_SECONDS = envfloat("PAYMENT_TIMEOUT_SECONDS", 20.0)  # YooKassa and BTCPay API calls

# --- media_jobs ---
# Image and video generation (media_jobs/). Budgets in seconds; sizes in bytes.
GPUNIQ_MEDIA_BUDGET_SECONDS = envint("GPUNIQ_MEDIA_BUDGET_SECONDS", 300)  # sync images and each job
GPUNIQ_MEDIA_POLL_SECONDS = envfloat("GPUNIQ_MEDIA_POLL_SECONDS", 1.0)  # vendor queue polling interval
GPUNIQ_MEDIA_COALESCE_SECONDS = envfloat("GPUNIQ_MEDIA_COALESCE_SECONDS", 2.0)  # job polls share one read
GPUNIQ_MEDIA_HEARTBEAT_SECONDS = envfloat("GPUNIQ_MEDIA_HEARTBEAT_SECONDS", 5.0)
GPUNIQ_MEDIA_DEAD_WORKER_SECONDS = envint("GPUNIQ_MEDIA_DEAD_WORKER_SECONDS", 60)  # no heartbeat → reaped
GPUNIQ_MEDIA_URL_TTL_SECONDS = envint("GPUNIQ_MEDIA_URL_TTL_SECONDS", 24 * 3600)  # signed /v1/llm/media links
GPUNIQ_MEDIA_FETCH_TIMEOUT = envfloat("GPUNIQ_MEDIA_FETCH_TIMEOUT", 20.0)  # user URLs (input_images, ...)
GPUNIQ_MEDIA_IMAGE_INPUT_MAX_BYTES = envint("GPUNIQ_MEDIA_IMAGE_INPUT_MAX_BYTES", 20 * 1024 * 1024)
GPUNIQ_MEDIA_VIDEO_INPUT_MAX_BYTES = envint("GPUNIQ_MEDIA_VIDEO_INPUT_MAX_BYTES", 100 * 1024 * 1024)
GPUNIQ_MEDIA_OUTPUT_MAX_BYTES = envint("GPUNIQ_MEDIA_OUTPUT_MAX_BYTES", 512 * 1024 * 1024)  # vendor downloads

# --- native api ---
# The OpenAPI schema of /v1/llm/* (llm.openapi): DRF views are introspected; the async views'
# hand-written path items are merged by a postprocessing hook.
SPECTACULAR_SETTINGS.update(
    {
        "DESCRIPTION": "The native GPUniq API: wrapped chat completions, persistent chat sessions, a "
        "terminal-command generator, usage history and balance. One key, one USD balance.",
        "SCHEMA_PATH_PREFIX": r"/v1/llm/",
        "COMPONENT_SPLIT_REQUEST": True,
        "POSTPROCESSING_HOOKS": [
            "drf_spectacular.hooks.postprocess_schema_enums",
            "llm.openapi.add_async_operations",
        ],
    }
)
