"""The alarm catalogue (spec 9.1, 9.3 and the AI guide's monitoring section) as data.

Each alarm names the Discord channel the alarm-router Lambda should post to; the channel is
part of the alarm's name (`<prefix>-<channel>-<key>`) and the first word of its description
(`[<channel>] ...`), so the router needs no lookup table.

App metrics are CloudWatch EMF from the app (src/sage/observability/emf.py): namespace
`Sage`; every metric is published under the dimension set [service, environment] and, when it
has dimensions of its own, also under [service, environment, <its dimensions>]. CloudWatch
matches dimension sets exactly, so an alarm picks one of those sets: the aggregate
{service, environment} unless the aggregate would mix series that must not be averaged
(HallucinationRate's response- and claim-level rates: the alarm reads `level=response`).
`service` is `api` (sage serve), `ingestor` (sage ingest) or `backup` (sage db backup and
sage db verify-backup).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

APP_NAMESPACE = "Sage"
# The daily backup plus two hours' slack (a slow or retried run is not "missing").
BACKUP_OVERDUE_SECONDS = 26 * 3600


class Channel(StrEnum):
    ERRORS = "errors"
    PERFORMANCE = "performance"
    BUSINESS = "business"


class Target(StrEnum):
    """What an alarm's dimensions point at; monitoring.py fills in the names."""

    API_SERVICE = "api-service"
    INGESTOR_SERVICE = "ingestor-service"
    DB_INSTANCE = "db-instance"  # one alarm per instance: the primary and each replica
    CACHE_NODE = "cache-node"  # one alarm per Valkey node
    TARGET_GROUP = "target-group"
    APP_API = "app-api"
    APP_INGESTOR = "app-ingestor"
    APP_BACKUP = "app-backup"
    TASK_FAILURE_RULE = "task-failure-rule"  # the EventBridge rule matching failed db tasks


@dataclass(frozen=True)
class AlarmSpec:
    key: str
    channel: Channel
    description: str
    namespace: str
    metric_name: str
    target: Target
    threshold: float
    period: int
    evaluation_periods: int
    statistic: str | None = "Average"
    extended_statistic: str | None = None
    comparison: str = "GreaterThanThreshold"
    treat_missing_data: str = "notBreaching"
    # App metrics: dimensions beyond {service, environment} (one of the metric's own sets).
    extra_dimensions: tuple[tuple[str, str], ...] = ()


ALARMS: tuple[AlarmSpec, ...] = (
    AlarmSpec(
        key="api-cpu-high",
        channel=Channel.PERFORMANCE,
        description="API tasks' CPU above 80% for 10 minutes",
        namespace="AWS/ECS",
        metric_name="CPUUtilization",
        target=Target.API_SERVICE,
        threshold=80,
        period=300,
        evaluation_periods=2,
    ),
    AlarmSpec(
        key="ingestor-cpu-high",
        channel=Channel.PERFORMANCE,
        description="Ingestor CPU above 80% for 10 minutes",
        namespace="AWS/ECS",
        metric_name="CPUUtilization",
        target=Target.INGESTOR_SERVICE,
        threshold=80,
        period=300,
        evaluation_periods=2,
    ),
    AlarmSpec(
        key="ingestor-not-running",
        channel=Channel.ERRORS,
        description="No ingestor task running for 5 minutes: market data is frozen",
        namespace="ECS/ContainerInsights",
        metric_name="RunningTaskCount",
        target=Target.INGESTOR_SERVICE,
        threshold=1,
        period=60,
        evaluation_periods=5,
        statistic="Minimum",
        comparison="LessThanThreshold",
        treat_missing_data="breaching",
    ),
    AlarmSpec(
        key="rds-cpu-high",
        channel=Channel.PERFORMANCE,
        description="PostgreSQL CPU above 80% for 10 minutes",
        namespace="AWS/RDS",
        metric_name="CPUUtilization",
        target=Target.DB_INSTANCE,
        threshold=80,
        period=300,
        evaluation_periods=2,
    ),
    AlarmSpec(
        key="valkey-memory-high",
        channel=Channel.PERFORMANCE,
        description="Valkey memory above 80% of maxmemory",
        namespace="AWS/ElastiCache",
        metric_name="DatabaseMemoryUsagePercentage",
        target=Target.CACHE_NODE,
        threshold=80,
        period=300,
        evaluation_periods=1,
    ),
    AlarmSpec(
        key="api-p95-latency",
        channel=Channel.PERFORMANCE,
        description="API p95 response time above 2 s for 5 minutes",
        namespace="AWS/ApplicationELB",
        metric_name="TargetResponseTime",
        target=Target.TARGET_GROUP,
        threshold=2,
        period=60,
        evaluation_periods=5,
        statistic=None,
        extended_statistic="p95",
    ),
    AlarmSpec(
        key="api-unhealthy-targets",
        channel=Channel.ERRORS,
        description="API tasks failing the ALB health check for 5 minutes",
        namespace="AWS/ApplicationELB",
        metric_name="UnHealthyHostCount",
        target=Target.TARGET_GROUP,
        threshold=0,
        period=60,
        evaluation_periods=5,
        statistic="Maximum",
    ),
    AlarmSpec(
        key="first-token-latency",
        channel=Channel.PERFORMANCE,
        description="Chat first token p95 above 5 s",
        namespace=APP_NAMESPACE,
        metric_name="FirstTokenLatency",
        target=Target.APP_API,
        threshold=5000,
        period=300,
        evaluation_periods=1,
        statistic=None,
        extended_statistic="p95",
    ),
    AlarmSpec(
        key="hallucination-rate",
        channel=Channel.ERRORS,
        description="Response-level hallucination rate above 1% of answers",
        namespace=APP_NAMESPACE,
        metric_name="HallucinationRate",
        target=Target.APP_API,
        threshold=1,
        period=900,
        evaluation_periods=1,
        # The app publishes the response- and claim-level rates; their aggregate is meaningless.
        extra_dimensions=(("level", "response"),),
    ),
    # The app caps its LLM queue at SAGE_LLM_QUEUE_SIZE (1000): a strict "> 1000" could never
    # fire, so the alarm is "at the cap", i.e. requests are being turned away.
    AlarmSpec(
        key="llm-queue-full",
        channel=Channel.PERFORMANCE,
        description="LLM request queue at 1000 (full) for 3 minutes",
        namespace=APP_NAMESPACE,
        metric_name="LLMQueueSize",
        target=Target.APP_API,
        threshold=1000,
        period=60,
        evaluation_periods=3,
        statistic="Maximum",
        comparison="GreaterThanOrEqualToThreshold",
    ),
    AlarmSpec(
        key="db-pool-high",
        channel=Channel.ERRORS,
        description="API database pool above 90% in use",
        namespace=APP_NAMESPACE,
        metric_name="DBPoolUsage",
        target=Target.APP_API,
        threshold=90,
        period=300,
        evaluation_periods=1,
    ),
    # The ingestor's pool too: in production its in-app db_pool rule is off (APP_RULES_OWNED_BY_ALARMS).
    AlarmSpec(
        key="ingestor-db-pool-high",
        channel=Channel.ERRORS,
        description="Ingestor database pool above 90% in use",
        namespace=APP_NAMESPACE,
        metric_name="DBPoolUsage",
        target=Target.APP_INGESTOR,
        threshold=90,
        period=300,
        evaluation_periods=1,
    ),
    # Spec 9.3's "API response time P95 > 500ms for 10 minutes" (the app's RequestLatency:
    # streams are timed as StreamDuration instead, so SSE never inflates it), beside spec 9.1's
    # ALB p95 > 2 s above. Both are CloudWatch's, so each posts once for the whole service.
    AlarmSpec(
        key="api-request-p95",
        channel=Channel.PERFORMANCE,
        description="API request latency p95 above 500 ms over 10 minutes",
        namespace=APP_NAMESPACE,
        metric_name="RequestLatency",
        target=Target.APP_API,
        threshold=500,
        period=600,
        evaluation_periods=1,
        statistic=None,
        extended_statistic="p95",
    ),
    AlarmSpec(
        key="backup-failed",
        channel=Channel.ERRORS,
        description="sage db backup reported a failure",
        namespace=APP_NAMESPACE,
        metric_name="BackupFailure",
        target=Target.APP_BACKUP,
        threshold=0,
        period=3600,
        evaluation_periods=1,
        statistic="Sum",
    ),
    # No successful backup in 26 hours: the daily backup failed, or never started (a task that
    # cannot start emits no BackupFailure), or the schedule stopped. Missing data breaches.
    AlarmSpec(
        key="backup-overdue",
        channel=Channel.ERRORS,
        description="No successful sage db backup in 26 hours",
        namespace=APP_NAMESPACE,
        metric_name="BackupSuccess",
        target=Target.APP_BACKUP,
        threshold=1,
        period=BACKUP_OVERDUE_SECONDS,
        evaluation_periods=1,
        statistic="Sum",
        comparison="LessThanThreshold",
        treat_missing_data="breaching",
    ),
    AlarmSpec(
        key="backup-verify-failed",
        channel=Channel.ERRORS,
        description="sage db verify-backup found a backup that does not restore or match its manifest",
        namespace=APP_NAMESPACE,
        metric_name="BackupVerifyFailure",
        target=Target.APP_BACKUP,
        threshold=0,
        period=3600,
        evaluation_periods=1,
        statistic="Sum",
    ),
    # Failures the app cannot report: the task exited non-zero before recording a metric
    # (database unreachable, S3 denied) or never started. Counted from the EventBridge rule
    # that matches those task state changes (scheduled.py).
    AlarmSpec(
        key="db-task-failed",
        channel=Channel.ERRORS,
        description="A scheduled sage db backup / verify-backup task failed or never started",
        namespace="AWS/Events",
        metric_name="TriggeredRules",
        target=Target.TASK_FAILURE_RULE,
        threshold=0,
        period=300,
        evaluation_periods=1,
        statistic="Sum",
    ),
    AlarmSpec(
        key="feed-stale",
        channel=Channel.ERRORS,
        description="Market symbols stale for 5 minutes",
        namespace=APP_NAMESPACE,
        metric_name="FeedStaleSymbols",
        target=Target.APP_INGESTOR,
        threshold=0,
        period=60,
        evaluation_periods=5,
        statistic="Maximum",
    ),
)

# API 5XX error *rate* (the spec's sample compared a raw 5XXError count with 5): metric math
# over one minute, target and load-balancer 5XX against requests.
ERROR_RATE_KEY = "api-5xx-rate"
ERROR_RATE_THRESHOLD_PERCENT = 5.0
ERROR_RATE_PERIOD = 60
ERROR_RATE_EXPRESSION = "IF(requests > 0, 100 * (FILL(target5xx, 0) + FILL(elb5xx, 0)) / requests, 0)"
ERROR_RATE_METRICS = {
    "requests": "RequestCount",
    "target5xx": "HTTPCode_Target_5XX_Count",
    "elb5xx": "HTTPCode_ELB_5XX_Count",
}

# The app's in-app alert rules (src/sage/observability/alerts.py, keys of SAGE_ALERT_RULES_OFF)
# whose condition these alarms also watch. In a stack the alarms own them: the API and ingestor
# task definitions switch those rules off, so a condition posts to Discord once, from CloudWatch
# (one evaluation for the whole service rather than one per task, and the path the DLQ and the
# e-mail fallback protect). The app keeps its other posts (daily summary, DAU milestones,
# market alerts). A new app rule must be listed here or in APP_RULES_KEPT_IN_APP (a test checks).
APP_RULES_OWNED_BY_ALARMS: dict[str, tuple[str, ...]] = {
    "error_rate": (ERROR_RATE_KEY,),
    "db_pool": ("db-pool-high", "ingestor-db-pool-high"),
    "hallucination": ("hallucination-rate",),
    "api_p95": ("api-request-p95", "api-p95-latency"),
    "first_token": ("first-token-latency",),
    "valkey_memory": ("valkey-memory-high",),
    "llm_queue": ("llm-queue-full",),
}
APP_RULES_KEPT_IN_APP: frozenset[str] = frozenset()
ALERT_RULES_OFF = ",".join(sorted(APP_RULES_OWNED_BY_ALARMS))

APP_SERVICE_DIMENSION = {Target.APP_API: "api", Target.APP_INGESTOR: "ingestor", Target.APP_BACKUP: "backup"}


def alarm_name(prefix: str, channel: Channel, key: str) -> str:
    return f"{prefix}-{channel.value}-{key}"


def alarm_count(*, db_instances: int, cache_nodes: int) -> int:
    """How many alarms a stack creates (the cost tool prices them)."""
    per_target = {Target.DB_INSTANCE: db_instances, Target.CACHE_NODE: cache_nodes}
    return sum(per_target.get(spec.target, 1) for spec in ALARMS) + 1


def alarm_metric_count(*, db_instances: int, cache_nodes: int) -> int:
    """CloudWatch bills metric-math alarms per metric they read."""
    return alarm_count(db_instances=db_instances, cache_nodes=cache_nodes) - 1 + len(ERROR_RATE_METRICS)
