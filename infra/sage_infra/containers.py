"""ECS container definitions for the one Sage image and its commands.

Plain settings go to `environment`; anything secret goes to `secrets` as a Secrets Manager
ARN that ECS resolves when the task starts, so no credential is ever in the task definition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi

from sage_infra.constants import APP_PORT, HEALTH_PATH

SCRATCH_VOLUME = "scratch"
SCRATCH_PATH = "/tmp"  # noqa: S108 - the task's own scratch volume (the root filesystem is read-only)
# The image is Python and ships no curl, so the health check uses the interpreter, as the
# Dockerfile's HEALTHCHECK does: no proxy (an HTTP(S)_PROXY setting must not reroute a
# loopback probe) and only a 200 counts.
HEALTH_CHECK_COMMAND = [
    "CMD",
    "python",
    "-c",
    "import sys, urllib.request as u; "
    f"r = u.build_opener(u.ProxyHandler({{}})).open('http://127.0.0.1:{APP_PORT}{HEALTH_PATH}', timeout=4); "
    "sys.exit(0 if r.status == 200 else 1)",
]


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: pulumi.Input[str]
    command: tuple[str, ...]
    environment: Mapping[str, pulumi.Input[str]]
    secrets: Mapping[str, pulumi.Input[str]]
    log_group: pulumi.Input[str]
    log_stream_prefix: str
    region: str
    port: int | None = None
    health_check: bool = False
    stop_timeout: int = 30
    ulimits: tuple[Mapping[str, Any], ...] = field(default_factory=tuple)


def container_definitions(spec: ContainerSpec) -> pulumi.Output[str]:
    definition: dict[str, Any] = {
        "name": spec.name,
        "image": spec.image,
        "essential": True,
        # Explicit entry point: the commands are `sage serve`, `sage ingest`, `sage db ...`
        # whatever the Dockerfile's ENTRYPOINT/CMD; ECS supplies the init process.
        "entryPoint": ["sage"],
        "command": list(spec.command),
        "environment": [{"name": k, "value": v} for k, v in sorted(spec.environment.items())],
        "secrets": [{"name": k, "valueFrom": v} for k, v in sorted(spec.secrets.items())],
        "readonlyRootFilesystem": True,
        "mountPoints": [{"sourceVolume": SCRATCH_VOLUME, "containerPath": SCRATCH_PATH, "readOnly": False}],
        "linuxParameters": {"initProcessEnabled": True},
        "stopTimeout": spec.stop_timeout,
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": spec.log_group,
                "awslogs-region": spec.region,
                "awslogs-stream-prefix": spec.log_stream_prefix,
                # A slow CloudWatch must never block the app's stdout.
                "mode": "non-blocking",
                "max-buffer-size": "25m",
            },
        },
    }
    if spec.port is not None:
        definition["portMappings"] = [{"containerPort": spec.port, "protocol": "tcp", "name": "http"}]
    if spec.health_check:
        definition["healthCheck"] = {
            "command": HEALTH_CHECK_COMMAND,
            "interval": 30,
            "timeout": 5,
            "retries": 3,
            "startPeriod": 60,
        }
    if spec.ulimits:
        definition["ulimits"] = [dict(u) for u in spec.ulimits]
    return pulumi.Output.json_dumps([definition])


def base_environment(
    *, image_tag: str, pool_size: int, max_overflow: int, workers: int, region: str
) -> dict[str, pulumi.Input[str]]:
    """Settings every Sage process in AWS shares (names from src/sage/settings.py)."""
    return {
        "SAGE_ENV": "production",
        "SAGE_RELEASE": image_tag,
        "SAGE_LOG_JSON": "true",
        "SAGE_DATA_DIR": f"{SCRATCH_PATH}/sage",
        "SAGE_DB_POOL_SIZE": str(pool_size),
        "SAGE_DB_MAX_OVERFLOW": str(max_overflow),
        "SAGE_WORKERS": str(workers),
        "AWS_REGION": region,
    }
