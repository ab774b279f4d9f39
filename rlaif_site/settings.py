"""Django settings for RLAIF Studio.

Everything that differs between a laptop, a server and CI comes from the environment (see README's table):
DATABASE_URL, REDIS_URL, STUDIO_DATA_DIR, SECRET_KEY, DEBUG, ALLOWED_HOSTS.
"""
from __future__ import annotations

import os
from pathlib import Path

import plotly

from rlaif_site import env

BASE_DIR = Path(__file__).resolve().parent.parent

# Artifacts (models, checkpoints, exported datasets) and the default SQLite database live here.
DATA_DIR = Path(os.environ.get("STUDIO_DATA_DIR") or BASE_DIR / "var").resolve()
ARTIFACTS_DIR = DATA_DIR / "artifacts"
MODELS_DIR = DATA_DIR / "models"  # offline demo models (demo://...) are built here

# Workers log to files, not terminals: the ML libraries' progress bars (loading and saving weights, dataset
# maps) would flood those logs while each stage reports its own progress. Setting these to 0 brings them back.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' and huggingface_hub's
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")  # datasets' (TRL tokenizes with .map)

DEBUG = env.boolean("DEBUG", False)
# Unset: a random key generated on the first start and kept (0600) under STUDIO_DATA_DIR, never a public default.
SECRET_KEY = env.secret_key(os.environ.get("SECRET_KEY"), DATA_DIR / "secret_key")
ALLOWED_HOSTS = env.csv_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.csv_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_rq",
    "axes",
    "ninja",  # django-ninja: its Swagger UI is served from these static files (CSP: script-src 'self')
    "rlaif_site",
    "constitutions",
    "runs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "rlaif_site.nul.NulRequestMiddleware",  # a NUL in a query string or form: 400, not a 500
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every page needs a login; views that must stay public say so with @login_not_required.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "rlaif_site.access.QueueDashboardSuperuserOnly",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last: django-axes counts failed logins and locks the username/address pair out (see below).
    "axes.middleware.AxesMiddleware",
]

# --- Security ------------------------------------------------------------------------------------
# STUDIO_HTTPS=true (the site is served over HTTPS, directly or behind a proxy) turns on the transport
# settings `manage.py check --deploy` asks for: redirect to HTTPS, secure cookies, HSTS.
HTTPS = env.boolean("STUDIO_HTTPS", False)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env.integer("STUDIO_HSTS_SECONDS", 31_536_000) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
if env.boolean("STUDIO_BEHIND_PROXY", False):
    # The proxy terminates TLS and says so in X-Forwarded-Proto (set it there, and strip it from clients).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True

# Content-Security-Policy (django-csp): scripts only from our own static files (plotly's included); plotly
# injects <style> elements and style attributes, so styles may be inline; no plugins, frames or foreign forms.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# Login throttling (django-axes): after AXES_FAILURE_LIMIT failed logins for one username from one address,
# that pair is locked out for AXES_COOLOFF_TIME hours; a successful login resets the count.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env.integer("STUDIO_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = 0.25  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
if env.boolean("STUDIO_BEHIND_PROXY", False):
    AXES_IPWARE_PROXY_COUNT = 1
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]

# Django's debug pages and error reports: every secret value (keys, SECRET_KEY, passwords inside
# DATABASE_URL / REDIS_URL) is replaced by [redacted:NAME], wherever it appears on the page.
DEFAULT_EXCEPTION_REPORTER = "rlaif_site.debug.RedactingExceptionReporter"
DEFAULT_EXCEPTION_REPORTER_FILTER = "rlaif_site.debug.RedactingExceptionReporterFilter"

ROOT_URLCONF = "rlaif_site.urls"
WSGI_APPLICATION = "rlaif_site.wsgi.application"
ASGI_APPLICATION = "rlaif_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "rlaif_site" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "rlaif_site.context_processors.roles",
            ],
        },
    },
]

DATABASES = {"default": env.database_config(os.environ.get("DATABASE_URL"), DATA_DIR / "studio.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "runs:list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise serves from here after collectstatic
# plotly's JavaScript is served from the installed plotly package: pages work offline, no CDN.
STATICFILES_DIRS = [
    BASE_DIR / "rlaif_site" / "static",
    ("plotly", Path(plotly.__file__).parent / "package_data"),
]
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Uploaded prompt files can be large; they stream to disk above 5 MB.
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 20 * 1024 * 1024
# The constitution editor posts ~9 fields per principle (Django's default of 1000 stops at ~110 principles).
DATA_UPLOAD_MAX_NUMBER_FIELDS = 10_000

# --- Background jobs -----------------------------------------------------------------------------
# REDIS_URL set: django-rq on that server, jobs run by `manage.py rqworker` processes (forking workers).
# REDIS_URL unset: an embedded in-memory Redis (fakeredis) shared by the web server and a SimpleWorker
# inside the `studio` process; the same django-rq/RQ calls are used either way.
REDIS_URL = env.redis_url(os.environ.get("REDIS_URL"))
EMBEDDED_QUEUE = REDIS_URL is None
QUEUE_NAMES = ("default", "gpu")
if EMBEDDED_QUEUE:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "rq": {"BACKEND": "rlaif_site.queueing.EmbeddedRedisCache"},
    }
    _queue_connection = {"USE_REDIS_CACHE": "rq"}
    RQ = {"WORKER_CLASS": "rlaif_site.queueing.StudioWorker", "COMMIT_MODE": "on_db_commit"}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    _queue_connection = {"URL": REDIS_URL}
    RQ = {"WORKER_CLASS": "rlaif_site.queueing.StudioForkWorker", "COMMIT_MODE": "on_db_commit"}
# Long ML stages set their own job_timeout when enqueued (see runs/services.py).
RQ_QUEUES = {name: {**_queue_connection, "DEFAULT_TIMEOUT": 3600} for name in QUEUE_NAMES}
RQ_SHOW_ADMIN_LINK = True
# torch's intra-op threads in each worker process; 0 (unset) keeps torch's default, a thread per core (runs/devices.py).
TORCH_THREADS = env.integer("STUDIO_TORCH_THREADS", 0)
if TORCH_THREADS < 0:
    raise env.ConfigError(f"STUDIO_TORCH_THREADS must be 0 (torch's default) or more; got {TORCH_THREADS}")
# A job of the gpu queue taken by a worker without a GPU fails at its start, unless this is true (tests, CI).
ALLOW_CPU_ON_GPU_QUEUE = env.boolean("STUDIO_ALLOW_CPU_ON_GPU_QUEUE", False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    # Secret values never reach a log line (training.redaction).
    "filters": {"redact": {"()": "training.redaction.RedactingFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}
