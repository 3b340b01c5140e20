"""Names and numbers other parts of Sage rely on: the spec's network plan and schedules, the app's contract."""

from __future__ import annotations

# --- network (spec 7.1) -------------------------------------------------------------------
VPC_CIDR = "10.0.0.0/16"
AZ_COUNT = 2
PUBLIC_SUBNET_CIDRS = ("10.0.0.0/24", "10.0.1.0/24")
PRIVATE_SUBNET_CIDRS = ("10.0.10.0/24", "10.0.11.0/24")
DATABASE_SUBNET_CIDRS = ("10.0.20.0/24", "10.0.21.0/24")

# --- the application's contract (ARCHITECTURE.md, src/sage/settings.py defaults) ----------
APP_PORT = 3000
HEALTH_PATH = "/health"
POSTGRES_PORT = 5432
VALKEY_PORT = 6379
DB_NAME = "sage"
DB_USERNAME = "sage_admin"  # the RDS master user: only `sage db bootstrap-roles` logs in as it
# The roles `sage db bootstrap-roles` creates (src/sage/ops/roles.py): who connects as which.
DB_OWNER_ROLE = "sage_owner"  # migrations, verify-backup
DB_APP_ROLE = "sage_app"  # the API and the ingestor: table reads and writes, no DDL
DB_READONLY_ROLE = "sage_readonly"  # sage db backup
APP_DB_POOL_SIZE = 5
APP_DB_MAX_OVERFLOW = 2
APP_WORKERS = 1
# The app streams chat over SSE with a keep-alive comment every 15 s and runs uvicorn with a
# 75 s keep-alive. The ALB's idle timeout must exceed the former (several times over) and stay
# below the latter, or the ALB reuses connections the app already closed (502s).
APP_SSE_KEEPALIVE_SECONDS = 15
APP_HTTP_KEEPALIVE_SECONDS = 75
ALB_IDLE_TIMEOUT_SECONDS = 70
# The app drains for SAGE_SHUTDOWN_GRACE_SECONDS (30 s) after SIGTERM: deregistration matches it.
DEREGISTRATION_DELAY_SECONDS = 30

# --- schedules from the spec ---------------------------------------------------------------
BACKUP_SCHEDULE = "cron(0 2 * * ? *)"  # `sage db backup`, daily at 02:00 UTC
# `sage db verify-backup`: weekly, two hours after Sunday's backup (they never overlap, so
# the connection budget counts only the larger of the two).
VERIFY_BACKUP_SCHEDULE = "cron(0 4 ? * SUN *)"
DB_BACKUP_WINDOW = "03:00-04:00"
DB_MAINTENANCE_WINDOW = "mon:04:00-mon:05:00"
DB_BACKUP_RETENTION_DAYS = 7
DB_ALLOCATED_STORAGE_GB = 20
DB_MAX_ALLOCATED_STORAGE_GB = 100
CACHE_MAINTENANCE_WINDOW = "sun:05:00-sun:06:00"
CACHE_SNAPSHOT_WINDOW = "03:00-04:00"
CACHE_SNAPSHOT_RETENTION_DAYS = 5
CACHE_NODES = 2
BACKUP_GLACIER_AFTER_DAYS = 30

LOG_RETENTION_CHOICES = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}
)

# Secrets Manager entries the stack creates (<prefix>/<name>); the cost tool prices them.
STACK_SECRETS = (
    "anthropic-api-key",
    "jwt-secret",
    "discord-webhook-errors",
    "discord-webhook-performance",
    "discord-webhook-business",
    "db-master",
    "database-url",
    "database-url-owner",
    "database-url-readonly",
    "database-url-master",
    "db-role-passwords",
    "valkey-auth-token",
    "valkey-url",
    "smtp-username",
    "smtp-password",
    "vapid-private-key",  # while webPushEnabled (the default)
)
OPTIONAL_SECRETS = ("sentry-dsn",)
