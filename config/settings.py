"""Settings, read from environment variables only (see docs/operations.md for the full list).

Two modes: development (the default, embedded SQLite, filesystem broker, local artifacts under var/) and
production (MLPLATFORM_ENV=production), which refuses to start without SECRET_KEY or with DEBUG on.
"""

import hashlib
import hmac
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("MLPLATFORM_VAR_DIR", str(BASE_DIR / "var")))

ENVIRONMENT = env_str("MLPLATFORM_ENV", "development")
if ENVIRONMENT not in {"development", "production"}:
    raise ImproperlyConfigured("MLPLATFORM_ENV must be 'development' or 'production'")
PRODUCTION = ENVIRONMENT == "production"

DEBUG = env_bool("DEBUG", default=not PRODUCTION)
SECRET_KEY = env_str("SECRET_KEY")
if PRODUCTION:
    if not SECRET_KEY:
        raise ImproperlyConfigured("SECRET_KEY must be set in production (MLPLATFORM_ENV=production)")
    if DEBUG:
        raise ImproperlyConfigured("DEBUG must be off in production (MLPLATFORM_ENV=production)")
# Old keys still verify sessions and signatures while a new SECRET_KEY is rolled out (docs/operations.md).
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS")
if not PRODUCTION and not SECRET_KEY:
    SECRET_KEY = "django-insecure-development-only-key-never-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "django_celery_beat",
    "axes",
    "apps.core",
    "apps.accounts",
    "apps.audit",
    "apps.projects",
    "apps.datasets",
    "apps.experiments",
    "apps.registry",
    "apps.notifications",
    "apps.deployments",
    "apps.monitoring",
    "apps.features",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "apps.core.middleware.RequestContextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a lockout raised by the auth backend into a 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "frontend" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.core.context_processors.navigation",
            ],
        },
    },
]

# --- Database: SQLite under var/ unless DATABASE_URL says otherwise -------------------------------------------
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock at BEGIN, so two processes appending to the audit hash chain are serialised
    # exactly as the advisory lock serialises them on PostgreSQL.
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 30}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "core:home"
LOGOUT_REDIRECT_URL = "accounts:login"

# Brute-force protection (django-axes): lock a username+address pair after AXES_FAILURE_LIMIT failures.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_LOCKOUT_TEMPLATE = "accounts/lockout.html"
AXES_VERBOSE = False
# Lock out the client, not the proxy in front of the portal: the same address the audit trail records.
AXES_CLIENT_IP_CALLABLE = "apps.core.middleware.client_address"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "frontend" / "static"]
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every process start when it is missing
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION

# --- Cache: Redis when REDIS_URL is set, else a per-process memory cache -------------------------------------
REDIS_URL = env_str("REDIS_URL")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
# Parallel test workers share one Redis database; a prefix per worker keeps their throttles apart.
CACHES["default"]["KEY_PREFIX"] = env_str("CACHE_KEY_PREFIX", "mlplatform")

# --- Celery: filesystem transport under var/ unless CELERY_BROKER_URL names Redis ---------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or "filesystem://"
CELERY_TASK_HARD_TIME_LIMIT = env_int("CELERY_TASK_HARD_TIME_LIMIT", 3600)
# Training runs (workers/tasks/training.py) get their own limits: at the soft one the run fails with the reason, at
# the hard one the worker process is killed. A search's time budget must fit under the soft limit
# (apps.experiments.services.experiment_launch refuses one that does not).
TRAINING_HARD_TIME_LIMIT = env_int("TRAINING_HARD_TIME_LIMIT", 4 * 3600)
TRAINING_SOFT_TIME_LIMIT = env_int("TRAINING_SOFT_TIME_LIMIT", TRAINING_HARD_TIME_LIMIT - 300)
if not 0 < TRAINING_SOFT_TIME_LIMIT < TRAINING_HARD_TIME_LIMIT:
    raise ImproperlyConfigured("TRAINING_SOFT_TIME_LIMIT must be positive and below TRAINING_HARD_TIME_LIMIT")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = VAR_DIR / "celery" / "queue"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
        # How often an idle worker looks for new messages (kombu's default, 1 s, delays every launch by up to that).
        "polling_interval": 0.1,
    }
    for _folder in ("queue", "processed", "control"):
        (VAR_DIR / "celery" / _folder).mkdir(parents=True, exist_ok=True)  # kombu does not create them
else:
    # A message not acknowledged within visibility_timeout is redelivered: it must outlast the longest hard limit.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": max(CELERY_TASK_HARD_TIME_LIMIT, TRAINING_HARD_TIME_LIMIT) + 600
    }
CELERY_TASK_IGNORE_RESULT = True  # PostgreSQL rows are the source of truth, never the result backend.
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Periodic tasks live in workers/tasks/periodic.py; beat's DatabaseScheduler loads this schedule into its tables.
CELERY_BEAT_SCHEDULE = {
    "datasets-sweep-stale-jobs": {"task": "datasets.sweep_stale_jobs", "schedule": 60.0},
    "experiments-sweep-stale-runs": {"task": "experiments.sweep_stale_runs", "schedule": 60.0},
    "notifications-dispatch-due-deliveries": {"task": "notifications.dispatch_due_deliveries", "schedule": 60.0},
    "features-sync-online": {"task": "features.sync_online_all", "schedule": 900.0},
    "features-sweep-stale-jobs": {"task": "features.sweep_stale_jobs", "schedule": 60.0},
    "monitoring-advance-retrainings": {"task": "monitoring.advance_retrainings", "schedule": 60.0},
    "deployments-sweep-explanations": {"task": "deployments.sweep_explanations", "schedule": 60.0},
    "deployments-import-prediction-logs": {"task": "deployments.import_prediction_logs", "schedule": 5.0},
    "deployments-reconcile-all": {
        "task": "deployments.reconcile_all",
        "schedule": float(env_int("SERVING_RECONCILE_SECONDS", 10)),
    },
}
DATASET_JOB_STALE_MINUTES = env_int("DATASET_JOB_STALE_MINUTES", 10)
DATASET_JOB_REQUEUE_MINUTES = env_int("DATASET_JOB_REQUEUE_MINUTES", 5)
DATASET_JOB_GIVE_UP_HOURS = env_int("DATASET_JOB_GIVE_UP_HOURS", 24)
# Time limits from settings, applied when the task is bound to the app (the task module reads no settings on import).
CELERY_TASK_ANNOTATIONS = {
    "experiments.train_run": {"soft_time_limit": TRAINING_SOFT_TIME_LIMIT, "time_limit": TRAINING_HARD_TIME_LIMIT}
}
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- Artifacts ------------------------------------------------------------------------------------------------
ARTIFACT_STORE = env_str("ARTIFACT_STORE") or f"file://{VAR_DIR / 'artifacts'}"
S3_ENDPOINT_URL = env_str("S3_ENDPOINT_URL")
S3_REGION = env_str("S3_REGION", "us-east-1")
# Credentials come from boto3's usual sources (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, profiles, instance roles).

# --- Deployments ------------------------------------------------------------------------------------------------
# Which runner starts model servers (workers.serving.runners): local processes on loopback ports by default.
SERVING_RUNNER = env_str("SERVING_RUNNER", "local")
# The local runner's per-endpoint folders (deployment file, admin token, pids, replica logs).
SERVING_STATE_DIR = Path(env_str("SERVING_STATE_DIR") or str(VAR_DIR / "serving"))
# Each endpoint's prediction log folder is <SERVING_LOG_ROOT>/<endpoint name>; the portal's worker imports from it.
SERVING_LOG_ROOT = Path(env_str("SERVING_LOG_ROOT") or str(VAR_DIR / "predictions"))
# How often beat runs the reconciler (start what should run, apply traffic changes, scrape metrics, import logs).
SERVING_RECONCILE_SECONDS = env_int("SERVING_RECONCILE_SECONDS", 10)
# Seconds a model server may take to load its versions and answer its health check.
SERVING_READY_TIMEOUT = env_int("SERVING_READY_TIMEOUT", 60)
# The model servers' own prediction-log rotation: a shorter age brings predictions to the portal sooner.
SERVING_LOG_ROTATE_SECONDS = env_int("SERVING_LOG_ROTATE_SECONDS", 60)

# The online feature store (latest value per entity, apps/features and the model servers' feature lookups).
FEATURES_ONLINE_REDIS_URL = env_str("FEATURES_ONLINE_REDIS_URL") or env_str("REDIS_URL") or "redis://127.0.0.1:6379/0"
# An explanation a worker claimed and did not finish within this is failed ("ask again"); one not claimed is re-sent.
EXPLANATION_STALE_MINUTES = env_int("EXPLANATION_STALE_MINUTES", 15)
# What the docker and kubernetes runners are built with (docs/operations.md, "Model servers"); the local runner
# needs only SERVING_STATE_DIR and SERVING_READY_TIMEOUT.
SERVING_IMAGE = env_str("SERVING_IMAGE", "mlplatform-serving:local")
SERVING_RUNNER_OPTIONS = {
    "docker": {
        "image": SERVING_IMAGE,
        "state_dir": SERVING_STATE_DIR,
        "log_dir_host": SERVING_LOG_ROOT,
        "network": env_str("SERVING_DOCKER_NETWORK") or None,
        "publish_host": env_str("SERVING_DOCKER_PUBLISH_HOST", "127.0.0.1"),
        "user": env_str("SERVING_DOCKER_USER") or None,
        "max_restarts": env_int("SERVING_MAX_RESTARTS", 3),
        "ready_timeout": float(env_int("SERVING_READY_TIMEOUT", 120)),
    },
    "kubernetes": {
        "image": SERVING_IMAGE,
        "namespace": env_str("SERVING_K8S_NAMESPACE", "mlplatform"),
        "secret_name": env_str("SERVING_K8S_SECRET", "mlplatform-secrets"),
        "log_claim": env_str("SERVING_K8S_LOG_CLAIM", "mlplatform-predictions"),
        "max_replicas": env_int("SERVING_K8S_MAX_REPLICAS", 0) or None,
        "cpu_target": env_int("SERVING_K8S_CPU_TARGET", 70),
        "ready_timeout": float(env_int("SERVING_READY_TIMEOUT", 180)),
    },
}

# --- Datasets -------------------------------------------------------------------------------------------------
# Each limit is enforced before work is wasted, with a message that names it.
DATASET_MAX_UPLOAD_BYTES = env_int("DATASET_MAX_UPLOAD_BYTES", 2 * 1024**3)
DATASET_MAX_DECOMPRESSED_BYTES = env_int("DATASET_MAX_DECOMPRESSED_BYTES", 10 * 1024**3)
DATASET_MAX_COLUMNS = env_int("DATASET_MAX_COLUMNS", 2000)
DATASET_MAX_CELL_BYTES = env_int("DATASET_MAX_CELL_BYTES", 1024**2)
# Normalised data up to this size stays in memory to be profiled and validated (no read-back of the Parquet copy).
DATASET_ANALYSIS_MEMORY_BYTES = env_int("DATASET_ANALYSIS_MEMORY_BYTES", 512 * 1024**2)
# S3 prefixes ("s3://bucket/prefix/") that users may import existing objects from; empty allows none.
DATASET_IMPORT_S3_PREFIXES = env_list("DATASET_IMPORT_S3_PREFIXES")
# Uploads larger than this go to a temporary file rather than memory while the request is read.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024**2
# Encrypts stored credentials (data connections). Defaults to a key derived from SECRET_KEY; set it separately in
# production so rotating SECRET_KEY does not make the stored passwords unreadable.
FIELD_ENCRYPTION_KEY = env_str("FIELD_ENCRYPTION_KEY") or ""

# --- Experiments ----------------------------------------------------------------------------------------------
# A training task touches its run's heartbeat this often; the sweep (every minute, from beat) fails a running run
# whose heartbeat is older than RUN_STALE_SECONDS, dispatches again a queued run not picked up for
# RUN_REQUEUE_MINUTES (its message was lost), and fails one still queued after RUN_GIVE_UP_HOURS.
RUN_HEARTBEAT_SECONDS = env_int("RUN_HEARTBEAT_SECONDS", 30)
RUN_STALE_SECONDS = env_int("RUN_STALE_SECONDS", 600)
RUN_REQUEUE_MINUTES = env_int("RUN_REQUEUE_MINUTES", 15)
RUN_GIVE_UP_HOURS = env_int("RUN_GIVE_UP_HOURS", 24)
if RUN_STALE_SECONDS < 3 * RUN_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured("RUN_STALE_SECONDS must be at least three heartbeats (3 x RUN_HEARTBEAT_SECONDS)")
# Signs every model artifact (HMAC-SHA256); nothing loads an artifact whose signature does not verify. Production
# requires it, set apart from SECRET_KEY so rotating that key does not invalidate every model. Development derives
# one from SECRET_KEY under a fixed label.
MODEL_SIGNING_KEY = env_str("MODEL_SIGNING_KEY") or ""
if PRODUCTION and not MODEL_SIGNING_KEY:
    raise ImproperlyConfigured("MODEL_SIGNING_KEY must be set in production (MLPLATFORM_ENV=production)")
if not MODEL_SIGNING_KEY:
    MODEL_SIGNING_KEY = hmac.new(SECRET_KEY.encode(), b"mlplatform model signing v1", hashlib.sha256).hexdigest()
# --- Model registry (docs/adr/0008-model-registry.md) ---
# How much better than the production version (on the project's primary metric, held-out test rows) a candidate
# must be for the "beats the champion" gate; 0.0 = at least as good.
REGISTRY_CHAMPION_MARGIN = 0.0

# --- API ------------------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "apps.core.api.StandardPagination",
    "PAGE_SIZE": 25,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.core.exceptions.api_exception_handler",
    "DEFAULT_THROTTLE_RATES": {"token_create": env_str("TOKEN_CREATE_RATE", "10/min")},
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "mlplatform API",
    "DESCRIPTION": "Problem definitions, datasets, experiments, registry, deployments, monitoring and audit.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    # drf-spectacular's Swagger UI defaults to a CDN; the sidecar package ships the assets as local static files.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several serializers expose the same choices; name each enum once so the schema has no naming clashes.
    "ENUM_NAME_OVERRIDES": {
        "RoleEnum": "apps.accounts.choices.Role",
        "ProjectRoleEnum": "apps.accounts.choices.ProjectRole",
        "ApiTokenStatusEnum": "apps.accounts.choices.ApiTokenStatus",
        "MetricEnum": "apps.projects.choices.Metric",
        # Ingestion jobs, experiments and runs share one lifecycle (queued, running, succeeded, failed, cancelled).
        "JobStatusEnum": "apps.datasets.choices.JobStatus",
        "WebhookDeliveryStatusEnum": "apps.notifications.choices.DeliveryStatus",
        "NotificationEventEnum": "apps.notifications.choices.Event",
        "StageEnum": "apps.registry.choices.Stage",
        "StageChangeEnum": "apps.registry.api.serializers.STAGE_CHANGES",
        "ModelVersionStatusEnum": "apps.registry.choices.VersionStatus",
        "PromotionRequestStatusEnum": "apps.registry.choices.RequestStatus",
        "DeploymentStatusEnum": "apps.deployments.choices.DeploymentStatus",
        "MonitorJobStatusEnum": "apps.monitoring.choices.JobStatus",
        "AlertStatusEnum": "apps.monitoring.choices.AlertStatus",
        "RetrainingStatusEnum": "apps.monitoring.choices.RetrainingStatus",
    },
}

# --- Audit ----------------------------------------------------------------------------------------------------
# How many proxies in front of the portal append to X-Forwarded-For; 0 trusts only REMOTE_ADDR.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

# --- Demo -----------------------------------------------------------------------------------------------------
DEMO_PASSWORD = env_str("DEMO_PASSWORD")

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "mlplatform@localhost")

# --- Notifications (docs/adr/0009-notifications.md) ----------------------------------------------------------------
# The portal's address as people reach it, for links in e-mails and webhook payloads.
PORTAL_BASE_URL = env_str("PORTAL_BASE_URL", "http://localhost:8000")
# Webhooks may call loopback and private addresses: a test/development switch only (tests deliver to a local
# receiver). Production refuses to start with it, as with DEBUG: it would open the internal network to anyone who
# may register a webhook.
WEBHOOK_ALLOW_PRIVATE_ADDRESSES = env_bool("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", False)
if PRODUCTION and WEBHOOK_ALLOW_PRIVATE_ADDRESSES:
    raise ImproperlyConfigured("WEBHOOK_ALLOW_PRIVATE_ADDRESSES must be off in production (MLPLATFORM_ENV=production)")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}

# --- Production hardening: `manage.py check --deploy` passes with no warnings ------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the cookie-free meta tag; keep Django's default.
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
