"""Settings: the only module that reads the environment.

Every variable is listed with its default in README.md ("Configuration"). A bad value raises
ImproperlyConfigured at start-up instead of misbehaving later.
"""

import codecs
import os
import secrets
import socket
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_secret(name: str, default: str = "") -> str:
    """A secret from NAME, or from the file named by NAME_FILE (Docker/systemd secrets)."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return os.environ.get(name, default)


def env_int(name: str, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ImproperlyConfigured(f"{name}={value} is outside {minimum}..{maximum}")
    return value


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {raw!r}")


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name) or default
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def parse_dicom_instances(raw: str, default_ae: str, default_port: int) -> list[tuple[str, int]]:
    """`AET:PORT,AET:PORT` -> [(AET, PORT), ...]; empty means the one default instance."""
    if not raw.strip():
        return [(default_ae, default_port)]
    instances = []
    for item in raw.split(","):
        ae_title, sep, port = item.strip().partition(":")
        if not sep or not ae_title or len(ae_title) > 16 or not port.isdigit():
            raise ImproperlyConfigured(f"PACS_DICOM_INSTANCES entry {item!r} is not AET:PORT")
        instances.append((ae_title, int(port)))
    return instances


def parse_syslog_url(raw: str) -> tuple[str, str, int] | None:
    """`udp://host:port` or `tcp://host:port` -> (protocol, host, port); empty means no syslog."""
    if not raw.strip():
        return None
    protocol, sep, rest = raw.strip().partition("://")
    host, colon, port = rest.rpartition(":")
    if not sep or protocol not in ("udp", "tcp") or not colon or not host or not port.isdigit() \
            or not 1 <= int(port) <= 65535:
        raise ImproperlyConfigured(f"PACS_SYSLOG_URL must be udp://host:port or tcp://host:port, got {raw!r}")
    return protocol, host.strip("[]"), int(port)


# --- Where things live -------------------------------------------------------------------------
DATA_DIR = Path(env_str("PACS_DATA_DIR", str(BASE_DIR / "var"))).resolve()
# Where the first storage location is made (its path is then kept in the database, so every
# node must see the same folder at the same path: a shared filesystem when there are several).
STORAGE_DIR = Path(env_str("PACS_STORAGE_DIR", str(DATA_DIR / "storage"))).resolve()
# Files every node must reach that are not stored instances: note attachments, finished exports,
# upload reports. One node: the data folder; several (docs/deployment.md): a shared folder.
SHARED_DIR = Path(env_str("PACS_SHARED_DIR", str(DATA_DIR))).resolve()
LOG_DIR = DATA_DIR / "log"
# This node's name in the Node table (the Monitor page, job claims); `runpacs --node` sets it.
PACS_NODE_NAME = env_str("PACS_NODE_NAME", "") or socket.gethostname()
if len(PACS_NODE_NAME) > 64:
    raise ImproperlyConfigured(f"PACS_NODE_NAME is longer than 64 characters: {PACS_NODE_NAME!r}")
# A node whose supervisor has not been heard from for this many seconds is shown as silent.
PACS_NODE_HEARTBEAT_SECONDS = env_int("PACS_NODE_HEARTBEAT_SECONDS", 10, minimum=1, maximum=3600)

# --- Core Django ---------------------------------------------------------------------------------
DEBUG = env_bool("PACS_DEBUG", False)


def _secret_key() -> str:
    """PACS_SECRET_KEY, else a key generated once and kept in the data folder."""
    configured = env_secret("PACS_SECRET_KEY")
    if configured:
        return configured
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
LOG_DIR.mkdir(parents=True, exist_ok=True)
ALLOWED_HOSTS = [h.strip() for h in env_str("PACS_ALLOWED_HOSTS", "*").split(",") if h.strip()]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_q",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served as our own static files (no CDN)
    "axes",
    "pacsone",
    "accounts",
    "audit",
    "routing",
    "hl7",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # After whitenoise: static files keep their caching; everything else gets CSP and no-store.
    "pacsone.security_headers.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The page's language from the browser, among LANGUAGES (English unless a catalog was added).
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # A request line too long to serve gets the styled 414 page, with the menu (pacsone/web/errors.py).
    "pacsone.web.errors.LongRequestLineMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "accounts.middleware.PasswordExpiryMiddleware",
    # Journals every 403 once, without a traceback (audit.middleware).
    "audit.middleware.JournalDenialsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout response.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses logins while locked out
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "pacsone.urls"
WSGI_APPLICATION = "pacsone.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

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
                "django.template.context_processors.i18n",
            ],
        },
    },
]


# --- Database ----------------------------------------------------------------------------------
def _database() -> dict:
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        config = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(DATA_DIR / "pacsone.sqlite3")}
    else:
        config = dj_database_url.parse(url, conn_max_age=0)
    engine = config["ENGINE"]
    if engine.endswith("sqlite3"):
        # WAL lets readers run beside the one writer; IMMEDIATE takes the write lock at BEGIN so
        # concurrent ingests wait (busy timeout) instead of failing on a lock upgrade;
        # synchronous=FULL makes every committed index row survive a power loss.
        config["OPTIONS"] = {
            "timeout": 60,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
        }
        config.setdefault("TEST", {})
    elif engine.endswith("mysql"):
        # READ COMMITTED: get_or_create after a concurrent insert sees the winner's row.
        config["OPTIONS"] = {"charset": "utf8mb4", "isolation_level": "read committed"}
        config.setdefault("TEST", {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"})
    elif engine.endswith("postgresql"):
        # psycopg 3 (requirements-postgres.txt); READ COMMITTED is PostgreSQL's own default.
        # Django's test database is made from template0 in UTF-8, as setuppacs makes the real one.
        config.setdefault("TEST", {"CHARSET": "UTF8", "TEMPLATE": "template0"})
    return config


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Session and password policy (HIPAA; DESIGN.md "Session and account controls") ------------
# An idle session ends after this many minutes: every request pushes the expiry forward.
PACS_SESSION_IDLE_MINUTES = env_int("PACS_SESSION_IDLE_MINUTES", 10, minimum=1)
SESSION_COOKIE_AGE = PACS_SESSION_IDLE_MINUTES * 60
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# A viewer's frame, rendered, metadata and bulk data requests of one study are journaled as one
# "view" entry per user, address and study in this many minutes (0: every request its own entry).
PACS_VIEW_JOURNAL_MINUTES = env_int("PACS_VIEW_JOURNAL_MINUTES", 10, minimum=0)
# API tokens expire this many days after they are made (they do not follow the idle timeout).
PACS_TOKEN_DAYS = env_int("PACS_TOKEN_DAYS", 30, minimum=1)
# A password older than this must be changed before anything else (0 = never expires).
PACS_PASSWORD_MAX_AGE_DAYS = env_int("PACS_PASSWORD_MAX_AGE_DAYS", 60, minimum=0)
# Failed logins (django-axes): after this many failures for one user name from one address,
# that pair is locked out for the cool-off time; an administrator can unlock it earlier
# (`manage.py axes_reset`).
AXES_FAILURE_LIMIT = env_int("PACS_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = env_int("PACS_LOCKOUT_MINUTES", 30, minimum=1) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_VERBOSE = False
# Behind HTTPS (a reverse proxy or a certificate), PACS_HTTPS=true makes cookies secure, sends
# HSTS and redirects plain HTTP: `manage.py check --deploy` is then clean.
PACS_HTTPS = env_bool("PACS_HTTPS", False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE_SSL_REDIRECT = PACS_HTTPS
SECURE_HSTS_SECONDS = 31536000 if PACS_HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = PACS_HTTPS
SECURE_HSTS_PRELOAD = PACS_HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if PACS_HTTPS else None
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# The interface's strings are marked for translation (gettext); English ships. A language is
# offered (chosen from the browser's Accept-Language by LocaleMiddleware) once its compiled
# catalog is in locale/<code>/LC_MESSAGES/django.mo: see locale/README.md.
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGE_CODE = env_str("PACS_LANGUAGE", "en")


def _languages() -> list[tuple[str, str]]:
    from django.conf.locale import LANG_INFO

    shipped = sorted(path.parent.parent.name for path in (BASE_DIR / "locale").glob("*/LC_MESSAGES/django.mo"))
    codes = dict.fromkeys(["en", LANGUAGE_CODE, *(code.replace("_", "-").lower() for code in shipped)])
    return [(code, LANG_INFO.get(code, {}).get("name", code)) for code in codes]


LANGUAGES = _languages()
TIME_ZONE = env_str("PACS_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- REST API ---------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "accounts.tokens.ApiTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.api_permissions.ActiveUserWithValidPassword"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "pacsone.api.negotiation.BrowsableOnlyWhenLoggedIn",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "PacsOne API",
    "DESCRIPTION": "Patients, studies, users, groups and the system journal of the PacsOne archive.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema names every endpoint and field: only for logged-in users.
    "SERVE_PERMISSIONS": ["accounts.api_permissions.ActiveUserWithValidPassword"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

# --- Task queue (django-q2) ----------------------------------------------------------------------
PACS_REDIS_URL = env_str("PACS_REDIS_URL", "")
# Background work (thumbnails, routing, reports) runs at this nice value, so that receiving from a
# modality, which waits for each answer, comes first when both want the CPU (pacsone/supervisor.py).
PACS_TASK_NICE = env_int("PACS_TASK_NICE", 10, minimum=0, maximum=19)
Q_CLUSTER = {
    "name": "pacsone",
    "workers": env_int("PACS_TASK_WORKERS", 2, minimum=1),
    "timeout": 600,
    "retry": 660,
    "max_attempts": 3,
    "queue_limit": 50,
    "save_limit": 1000,
    "catch_up": False,
    "sync": env_bool("PACS_TASKS_SYNC", False),
}
if PACS_REDIS_URL:
    Q_CLUSTER["redis"] = PACS_REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# The cache every web worker shares (the study list's archive totals, which a delete or restore
# clears at once): Redis when the nodes share one, else files in the data folder, so that all
# gunicorn workers of this node see the same entry (a per-process cache kept other workers'
# totals up to a minute stale after a delete).
if PACS_REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": PACS_REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                          "LOCATION": str(DATA_DIR / "web-cache")}}

# Jobs (routing/jobs.py): a job runs in its own process (not inside a django-q2 task, whose
# timeout would kill a long one), holding a lease it renews; a job whose lease ran out (its
# process died) is taken up again. Transient failures retry after PACS_JOB_RETRY_SECONDS,
# doubling each time. PACS_JOB_RUNNERS: jobs running at once, counted over every node that
# shares the database.
PACS_JOB_RUNNERS = env_int("PACS_JOB_RUNNERS", 4, minimum=1, maximum=64)
PACS_JOB_LEASE_SECONDS = env_int("PACS_JOB_LEASE_SECONDS", 120, minimum=5)
PACS_JOB_RETRY_SECONDS = env_int("PACS_JOB_RETRY_SECONDS", 60, minimum=1)
# Routing: a study is complete (and routed) once no instance arrived for this many seconds.
PACS_ROUTING_QUIET_SECONDS = env_int("PACS_ROUTING_QUIET_SECONDS", 30, minimum=0)
# Storage Commitment after routing (docs/routing.md): how long a routing job waits on its
# association for the destination's N-EVENT-REPORT before leaving it to come on a later one, and
# how long a commitment may take at all before its deliveries show "commitment not received".
PACS_COMMITMENT_WAIT_SECONDS = env_int("PACS_COMMITMENT_WAIT_SECONDS", 5, minimum=0, maximum=600)
PACS_COMMITMENT_TIMEOUT_MINUTES = env_int("PACS_COMMITMENT_TIMEOUT_MINUTES", 60, minimum=1)

# --- The archive ---------------------------------------------------------------------------------
PACS_WEB_PORT = env_int("PACS_WEB_PORT", 8000, 1, 65535)
PACS_WEB_WORKERS = env_int("PACS_WEB_WORKERS", 2, minimum=1)
# Threads per web worker: requests served at once by each (each may hold a database connection).
PACS_WEB_THREADS = env_int("PACS_WEB_THREADS", 8, minimum=1, maximum=256)
# Slow clients (pacsone/gunicorn_worker.py): a request head must arrive within this many seconds;
# once a request is being served, each read or write of its socket waits at most this long.
PACS_HTTP_HEADER_TIMEOUT = env_int("PACS_HTTP_HEADER_TIMEOUT", 10, minimum=1)
PACS_HTTP_READ_TIMEOUT = env_int("PACS_HTTP_READ_TIMEOUT", 30, minimum=1)
PACS_AE_TITLE = env_str("PACS_AE_TITLE", "PACSONE")
PACS_DICOM_PORT = env_int("PACS_DICOM_PORT", 11112, 1, 65535)
PACS_DICOM_INSTANCES = parse_dicom_instances(
    env_str("PACS_DICOM_INSTANCES", ""), PACS_AE_TITLE, PACS_DICOM_PORT
)
# SCP worker processes per instance, sharing its listening socket.
PACS_SCP_WORKERS = env_int("PACS_SCP_WORKERS", min(4, os.cpu_count() or 1), minimum=1, maximum=64)
# Largest PDU we accept; large PDUs mean fewer reads per image (0 would mean unlimited).
PACS_MAX_PDU = env_int("PACS_MAX_PDU", 4 * 1024 * 1024, minimum=0)
# Limits that keep one peer from stalling or starving the SCP (README, "DICOM engine limits").
# Associations served at once by one SCP worker process; more are rejected at once (transient).
PACS_DICOM_MAX_ASSOCIATIONS = env_int("PACS_DICOM_MAX_ASSOCIATIONS", 24, minimum=1, maximum=1024)
# Seconds for a whole A-ASSOCIATE-RQ to arrive after the connection opens.
PACS_DICOM_ACSE_TIMEOUT = env_int("PACS_DICOM_ACSE_TIMEOUT", 30, minimum=1)
# Seconds for a whole PDU to arrive once it has begun (or, inside a message, once the last ended).
PACS_DICOM_PDU_TIMEOUT = env_int("PACS_DICOM_PDU_TIMEOUT", 60, minimum=1)
# Seconds an association may stay silent between messages (and a peer may take to answer ours).
PACS_DICOM_IDLE_TIMEOUT = env_int("PACS_DICOM_IDLE_TIMEOUT", 120, minimum=1)
# Largest command set, and largest data set held in memory (C-FIND/C-MOVE/C-GET identifiers).
PACS_DICOM_MAX_COMMAND_BYTES = env_int("PACS_DICOM_MAX_COMMAND_BYTES", 64 * 1024, minimum=1024)
PACS_DICOM_MAX_IDENTIFIER_BYTES = env_int("PACS_DICOM_MAX_IDENTIFIER_BYTES", 1024 * 1024, minimum=1024)
# Largest C-STORE data set (written to a temp file as it arrives), in MB.
PACS_DICOM_MAX_STORE_MB = env_int("PACS_DICOM_MAX_STORE_MB", 8192, minimum=1)
# An association thread idle this long closes its database connection and ends.
PACS_DICOM_THREAD_IDLE_SECONDS = env_int("PACS_DICOM_THREAD_IDLE_SECONDS", 60, minimum=1)
# Temp files older than this (left by a crash) are removed, checked every PACS_TEMP_SWEEP_MINUTES.
PACS_TEMP_MAX_AGE_HOURS = env_int("PACS_TEMP_MAX_AGE_HOURS", 24, minimum=1)
PACS_TEMP_SWEEP_MINUTES = env_int("PACS_TEMP_SWEEP_MINUTES", 60, minimum=1)
PACS_HL7_PORT = env_int("PACS_HL7_PORT", 2575, 1, 65535)
# --- HL7 MLLP listener (hl7/listener.py) ---
# Largest message accepted (bytes between the MLLP blocks); a larger one gets an AR and the connection closes.
PACS_HL7_MAX_MESSAGE_BYTES = env_int("PACS_HL7_MAX_MESSAGE_BYTES", 1024 * 1024, minimum=1024)
# A message begun must arrive whole within this many seconds; a connection idle longer is closed.
PACS_HL7_MESSAGE_TIMEOUT = env_int("PACS_HL7_MESSAGE_TIMEOUT", 30, minimum=1)
PACS_HL7_IDLE_TIMEOUT = env_int("PACS_HL7_IDLE_TIMEOUT", 300, minimum=1)
PACS_HL7_MAX_CONNECTIONS = env_int("PACS_HL7_MAX_CONNECTIONS", 32, minimum=1)
# How text is read when MSH-18 names no character set (HL7's default is ASCII; many senders use UTF-8).
PACS_HL7_DEFAULT_CHARSET = env_str("PACS_HL7_DEFAULT_CHARSET", "utf-8")
try:
    codecs.lookup(PACS_HL7_DEFAULT_CHARSET)
except LookupError:
    raise ImproperlyConfigured(f"PACS_HL7_DEFAULT_CHARSET={PACS_HL7_DEFAULT_CHARSET!r} is not a character set Python knows")
# Our MSH-3/MSH-4 in ACKs and notifications.
PACS_HL7_APPLICATION = env_str("PACS_HL7_APPLICATION", "PACSONE")
PACS_HL7_FACILITY = env_str("PACS_HL7_FACILITY", "")
# Outbound notifications: seconds to connect and to wait for the receiver's ACK.
PACS_HL7_SEND_TIMEOUT = env_int("PACS_HL7_SEND_TIMEOUT", 15, minimum=1)
# Who may open an association and C-STORE: "any" AE (default), or only "registered" AEs calling
# from their registered address (others get A-ASSOCIATE-RJ; C-STORE needs the AE's store permission).
PACS_ACCEPT_CALLING_AE = env_choice("PACS_ACCEPT_CALLING_AE", "any", ("any", "registered"))
# Called-AE policy: "ours" accepts associations addressed to one of our AE titles (PACS_AE_TITLE,
# PACS_DICOM_INSTANCES), "any" whatever title the caller uses.
PACS_ACCEPT_CALLED_AE = env_choice("PACS_ACCEPT_CALLED_AE", "ours", ("ours", "any"))
# Storage SOP classes pynetdicom does not list (private ones from GE, Siemens, ...; newer standard
# ones) are accepted for C-STORE and stored as received; false refuses their contexts.
PACS_ACCEPT_UNKNOWN_SOP_CLASSES = env_bool("PACS_ACCEPT_UNKNOWN_SOP_CLASSES", True)
# Who may C-FIND/C-MOVE/C-GET: only "registered" AEs calling from their registered address (default),
# or any AE ("open", the behaviour before 2026-12). An AE linked to a user or group sees only what
# they may see, under either policy.
PACS_DICOM_QUERY_POLICY = env_choice("PACS_DICOM_QUERY_POLICY", "registered", ("registered", "open"))
# Resolving a registered AE's host name to check a caller's address waits at most this long.
PACS_DICOM_RESOLVE_SECONDS = env_int("PACS_DICOM_RESOLVE_SECONDS", 2, minimum=1, maximum=30)
# What a re-sent SOP Instance UID does: "ignore" keeps the first copy, "replace" keeps the newest.
PACS_DUPLICATE_POLICY = env_choice("PACS_DUPLICATE_POLICY", "ignore", ("ignore", "replace"))
# C-FIND person-name matching: "insensitive" (default) or "sensitive" to case.
PACS_NAME_MATCHING = env_choice("PACS_NAME_MATCHING", "insensitive", ("insensitive", "sensitive"))
# C-FIND keys no index column holds are matched on the stored headers of the instances the
# indexed keys leave; a query that would read more headers than this is refused (0xA700). At
# most 30,000: the matched entities must fit one SQL statement's parameters (SQLite: 32,766).
PACS_QUERY_HEADER_SCAN_LIMIT = env_int("PACS_QUERY_HEADER_SCAN_LIMIT", 10_000, minimum=1, maximum=30_000)
PACS_ROOT_PASSWORD = env_secret("PACS_ROOT_PASSWORD")
# Auto-scan import: a folder scanned every few minutes; empty turns it off.
PACS_AUTOSCAN_DIR = env_str("PACS_AUTOSCAN_DIR", "")
PACS_AUTOSCAN_MINUTES = env_int("PACS_AUTOSCAN_MINUTES", 1, minimum=1)
# Days a deleted study stays in the trash (restorable by System Administration) before it is
# deleted for good by the daily schedule.
PACS_TRASH_DAYS = env_int("PACS_TRASH_DAYS", 7, minimum=0)
# Largest file that can be attached to a study or image note.
PACS_ATTACHMENT_MAX_MB = env_int("PACS_ATTACHMENT_MAX_MB", 50, minimum=1)
# Largest browser upload of DICOM files or ZIPs, in one go.
PACS_UPLOAD_MAX_MB = env_int("PACS_UPLOAD_MAX_MB", 2048, minimum=1)
# OHIF's built files (`make ohif`), served at /viewer/; empty: var/ohif in the checkout.
PACS_OHIF_DIR = env_str("PACS_OHIF_DIR", "")
# The journal's keyed-MAC key: a file outside the database (created with mode 0600 on first use).
PACS_JOURNAL_KEY_FILE = Path(env_str("PACS_JOURNAL_KEY_FILE", str(DATA_DIR / "journal.key")))
# The chain's head goes to the log (and syslog) every this many entries, and at least this often.
PACS_JOURNAL_HEAD_EVERY = env_int("PACS_JOURNAL_HEAD_EVERY", 100, minimum=1)
PACS_JOURNAL_HEAD_MINUTES = env_int("PACS_JOURNAL_HEAD_MINUTES", 60, minimum=1)
# A ZIP (uploaded or imported) is refused before extraction when its members expand to more than
# this in all, or to more than PACS_ZIP_MAX_RATIO times the ZIP's compressed size.
PACS_ZIP_MAX_EXPANDED_MB = env_int("PACS_ZIP_MAX_EXPANDED_MB", 20480, minimum=1)
PACS_ZIP_MAX_RATIO = env_int("PACS_ZIP_MAX_RATIO", 100, minimum=2)
# The folders the web Import may read (os.pathsep-separated, `:` on Linux); nothing else on the
# server. Empty turns the web Import off. `manage.py importdicom` is not restricted.
PACS_IMPORT_ROOTS = [Path(p).resolve() for p in
                     env_str("PACS_IMPORT_ROOTS", str(DATA_DIR / "import")).split(os.pathsep) if p.strip()]
# Wildcard patterns in searches (study list, API, C-FIND): at most this many `*`/`?` and this
# many characters per value; a longer pattern is refused with a clear message.
PACS_MATCH_MAX_WILDCARDS = env_int("PACS_MATCH_MAX_WILDCARDS", 8, minimum=1)
PACS_MATCH_MAX_LENGTH = env_int("PACS_MATCH_MAX_LENGTH", 64, minimum=1)
# Longest time one database statement of a search (study list, API lists, C-FIND, C-MOVE/C-GET
# matching) may take, in milliseconds; a slower one is stopped and the search refused.
PACS_QUERY_TIMEOUT_MS = env_int("PACS_QUERY_TIMEOUT_MS", 10000, minimum=1)
# The monthly journal e-mail goes to this address when an e-mail server is configured.
DEFAULT_FROM_EMAIL = env_str("PACS_EMAIL_FROM", "pacsone@localhost")

# --- Logging: one key=value line per event, to stderr and var/log/pacsone.log -----------------------
LOG_LEVEL = env_choice("PACS_LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"()": "pacsone.log_format.FormattedOnce",
                  "format": "%(asctime)s %(levelname)s %(name)s pid=%(process)d %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        # Every process of the server appends to one file (O_APPEND keeps lines whole).
        "file": {
            "class": "logging.handlers.WatchedFileHandler",
            "filename": str(LOG_DIR / "pacsone.log"),
            "formatter": "plain",
            "delay": True,
        },
    },
    "root": {"handlers": ["console", "file"], "level": LOG_LEVEL},
    "loggers": {
        # The journal chain's head (audit/journal.py): always logged, whatever PACS_LOG_LEVEL says.
        "audit.head": {"level": "INFO"},
        "pynetdicom": {"level": "WARNING"},
        "django-q": {"level": "WARNING"},  # django-q2 logs as "django-q": every scheduled run, at INFO
        "axes": {"level": "WARNING"},
    },
}
# The journal chain's head also goes to a syslog server (RFC 5424) when PACS_SYSLOG_URL is set.
PACS_SYSLOG_URL = parse_syslog_url(env_str("PACS_SYSLOG_URL", ""))
if PACS_SYSLOG_URL:
    LOGGING["handlers"]["syslog"] = {"()": "audit.syslog.Rfc5424Handler", "protocol": PACS_SYSLOG_URL[0],
                                     "host": PACS_SYSLOG_URL[1], "port": PACS_SYSLOG_URL[2]}
    LOGGING["loggers"]["audit.head"]["handlers"] = ["syslog"]
