"""The alarm-router Lambda, loaded as Lambda loads it: its package (the files the infra program
archives: infra/alarm_router/handler.py and the app's src/sage/notify/discord_limits.py) laid
out in one directory on sys.path, `handler.handler`, with Secrets Manager (and SQS) served by
moto on 127.0.0.1 and Discord by the local fake."""

from __future__ import annotations

import importlib
import importlib.util
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

INFRA_DIR = Path(__file__).resolve().parents[2] / "infra"
ROUTER_DIR = INFRA_DIR / "alarm_router"


def package_files() -> dict[str, Path]:
    """The Lambda package's files, from the same function the infra program archives them with."""
    spec = importlib.util.spec_from_file_location("router_package", INFRA_DIR / "sage_infra" / "router_package.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    files: dict[str, Path] = module.router_files(ROUTER_DIR)
    return files


def lay_out_package(target: Path) -> Path:
    """Copy the package's files into `target`, as the Lambda's /var/task would hold them."""
    for name, source in package_files().items():
        shutil.copyfile(source, target / name)
    return target


@pytest.fixture(scope="session")
def package_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return lay_out_package(tmp_path_factory.mktemp("alarm_router_package"))


@pytest.fixture(scope="session")
def router(package_dir: Path) -> ModuleType:
    sys.path.insert(0, str(package_dir))
    writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        module = importlib.import_module("handler")
    finally:
        sys.path.remove(str(package_dir))
        sys.dont_write_bytecode = writes_bytecode
    assert Path(module.__file__).parent == package_dir
    return module


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleeps(router, monkeypatch) -> Sleeps:
    recorder = Sleeps()
    monkeypatch.setattr(router, "sleep", recorder)
    return recorder


@pytest.fixture
def aws(moto_endpoint, monkeypatch) -> Any:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return boto3.client("secretsmanager")


@pytest.fixture
def webhooks(router, aws, discord, monkeypatch) -> dict[str, str]:
    """One Discord webhook secret per channel; the Lambda gets their ARNs. Returns channel -> ARN."""
    import uuid

    arns: dict[str, str] = {}
    for channel in ("errors", "performance", "business"):
        secret = aws.create_secret(
            Name=f"sage/discord-webhook-{channel}-{uuid.uuid4().hex[:6]}", SecretString=discord.url(channel)
        )
        arns[channel] = secret["ARN"]
        monkeypatch.setenv(router.ARN_VARIABLES[channel], secret["ARN"])
    for name in ("ALARM_ROUTES", "ALARM_DEFAULT_CHANNEL", "ALARM_NOTIFY_OK_FROM_INSUFFICIENT_DATA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(router, "_SECRETS", router.SecretCache(300))
    return arns


class LambdaContext:
    def __init__(self, remaining_ms: int = 30_000) -> None:
        self.remaining_ms = remaining_ms
        self.function_name = "sage-alarm-router"
        self.aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def context() -> LambdaContext:
    return LambdaContext()
