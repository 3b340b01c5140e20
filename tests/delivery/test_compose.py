"""docker-compose.yml: valid by the Compose specification, and right where the schema cannot see."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import pytest

from sage.settings import Settings
from tests.delivery import compose
from tests.delivery.tools import REPO, load_yaml, run_tool

SAGE_SERVICES = ("migrate", "backend", "ingestor")
NO_DOTENV: dict[str, str] | None = None
DOTENV_CASES = {
    "without .env": NO_DOTENV,
    "with .env copied from .env.example": compose.parse_dotenv((REPO / ".env.example").read_text()),
}


@pytest.fixture(params=list(DOTENV_CASES), ids=list(DOTENV_CASES))
def dotenv(request: pytest.FixtureRequest) -> dict[str, str] | None:
    return DOTENV_CASES[request.param]


@pytest.fixture
def model(dotenv: dict[str, str] | None) -> dict:
    return compose.load(dotenv)


def env_files(dotenv: dict[str, str] | None) -> dict[str, str | None]:
    text = None if dotenv is None else (REPO / ".env.example").read_text()
    return {".env": text}


def test_the_file_follows_the_compose_specification():
    result = run_tool("check-jsonschema", "--builtin-schema", "vendor.compose-spec", str(compose.COMPOSE_FILE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_dependency_names_a_service_and_a_condition_it_can_meet(model):
    services = model["services"]
    for name, service in services.items():
        depends = service.get("depends_on", {})
        items = {d: {"condition": "service_started"} for d in depends} if isinstance(depends, list) else depends
        for target, spec in items.items():
            assert target in services, f"{name} depends on unknown service {target}"
            assert target != name
            condition = spec["condition"]
            if condition == "service_healthy":
                check = services[target].get("healthcheck", {})
                from_image = "build" in services[target]  # our Dockerfile's HEALTHCHECK
                assert (check.get("test") or from_image) and not check.get("disable"), f"{target} has no health check"
            elif condition == "service_completed_successfully":
                assert services[target].get("restart", "no") == "no", f"{target} must be one-shot"


def test_every_port_mapping_parses_and_no_host_port_is_taken_twice(model):
    taken: dict[int, str] = {}
    for name, service in model["services"].items():
        for spec in service.get("ports", []):
            _, host, _ = compose.parse_port(str(spec))
            if host is not None:
                assert host not in taken, f"{name} and {taken[host]} both publish {host}"
                taken[host] = name
    assert {3000, 5173} <= set(taken)


def test_postgres_18_keeps_its_data_in_a_named_volume_and_reports_health(model):
    postgres = model["services"]["postgres"]
    assert re.fullmatch(r"postgres:18(\.\d+)?(-[a-z0-9]+)?", postgres["image"])
    volume, _, target = postgres["volumes"][0].partition(":")
    assert volume in model["volumes"] and target == "/var/lib/postgresql"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])


def test_valkey_8_reports_health(model):
    valkey = model["services"]["valkey"]
    assert re.fullmatch(r"valkey/valkey:8(\.\d+)*(-[a-z0-9]+)?", valkey["image"])
    assert "ping" in " ".join(valkey["healthcheck"]["test"])


def test_the_backend_reloads_from_mounted_source_after_a_successful_migration(model):
    services = model["services"]
    backend = services["backend"]
    assert backend["command"] == ["sage", "serve", "--reload"]
    assert "./src:/app/src:ro" in backend["volumes"]
    assert compose.service_environment(model, "backend", {".env": None})["PYTHONPATH"] == "/app/src"
    assert backend["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "valkey": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"},
    }
    assert services["migrate"]["command"][:2] == ["sage", "db"]
    assert services["migrate"]["command"][2] in {"upgrade", "migrate"}
    assert services["ingestor"]["command"] == ["sage", "ingest"]
    assert services["ingestor"]["depends_on"] == backend["depends_on"]


def test_the_sage_services_build_this_repository_and_run_with_a_read_only_root(model):
    for name in SAGE_SERVICES:
        service = model["services"][name]
        assert service["build"]["context"] == "." and service["build"]["target"] == "runtime"
        assert service["read_only"] is True and "/tmp" in service["tmpfs"]


def test_the_front_end_is_vites_dev_server_on_5173_forwarding_the_api_to_the_backend(model):
    frontend = model["services"]["frontend"]
    assert any(
        compose.parse_port(str(p))[1] == 5173 and compose.parse_port(str(p))[2] == 5173 for p in frontend["ports"]
    )
    assert frontend["command"][-1].endswith("pnpm install --frozen-lockfile && pnpm dev")
    mounts = dict(v.split(":")[:2] for v in frontend["volumes"])
    assert mounts["./frontend"] == frontend["working_dir"] == "/app"
    assert mounts["frontend_node_modules"] == "/app/node_modules" and "frontend_node_modules" in model["volumes"]
    upstream = urlsplit(frontend["environment"]["SAGE_API_PROXY"])
    assert upstream.hostname in model["services"] and upstream.port == 3000
    package = json.loads((REPO / "frontend" / "package.json").read_text())
    assert "--port 5173" in package["scripts"]["dev"] and "--host 0.0.0.0" in package["scripts"]["dev"]
    vite = (REPO / "frontend" / "vite.config.ts").read_text()
    assert "process.env.SAGE_API_PROXY" in vite and '"/api"' in vite


def test_every_service_is_on_the_one_network(model):
    assert list(model["networks"]) == ["sage-network"]
    for name, service in model["services"].items():
        assert service["networks"] == ["sage-network"], name


@pytest.mark.parametrize("service", SAGE_SERVICES)
def test_every_variable_the_sage_services_need_is_provided(model, dotenv, service, monkeypatch):
    environment = compose.service_environment(model, service, env_files(dotenv))
    for name in [*Settings.model_fields, "DATABASE_URL", "VALKEY_URL", "ANTHROPIC_API_KEY", "SENTRY_DSN"]:
        monkeypatch.delenv(name.upper(), raising=False)
        monkeypatch.delenv(f"SAGE_{name.upper()}", raising=False)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    settings = Settings()  # the container's configuration must load
    settings.check_production()
    services = model["services"]

    database = urlsplit(settings.database_url or "")
    postgres = services["postgres"]["environment"]
    assert database.hostname in services and "postgres" in services[database.hostname]["image"]
    assert (database.username, database.password) == (postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"])
    assert database.path == f"/{postgres['POSTGRES_DB']}"

    cache = urlsplit(settings.valkey_url or "")
    assert cache.hostname in services and "valkey" in services[cache.hostname]["image"]

    if service == "backend":
        assert settings.host == "0.0.0.0"
        container_ports = {compose.parse_port(str(p))[2] for p in services["backend"]["ports"]}
        assert container_ports == {settings.port}


def test_yaml_anchors_resolve_to_the_same_settings_for_every_sage_service():
    raw = load_yaml(compose.COMPOSE_FILE)
    environments = [raw["services"][name]["environment"] for name in SAGE_SERVICES]
    assert all(env == environments[0] for env in environments)
