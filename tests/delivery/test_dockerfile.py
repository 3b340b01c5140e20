"""The container image's recipe: lint-clean, and the properties the issue and spec ask for."""

from __future__ import annotations

import json
import re

import pytest

from tests.delivery.dockerfile import DockerIgnore, Stage, copy_sources, parse
from tests.delivery.tools import REPO, run_tool

DOCKERFILE = REPO / "Dockerfile"
COMPILERS = ("gcc", "g++", "clang", "build-essential", "make", "binutils", "cc")
# RDS PostgreSQL's major version (spec: PostgreSQL 18); pg_dump must be at least this new.
SERVER_MAJOR = 18


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse(DOCKERFILE)


@pytest.fixture(scope="module")
def runtime(stages: list[Stage]) -> Stage:
    """The API and ingestor image (`--target runtime`)."""
    return next(stage for stage in stages if stage.name == "runtime")


@pytest.fixture(scope="module")
def ops(stages: list[Stage]) -> Stage:
    """The one-off database tasks' image (`--target ops`): runtime plus PostgreSQL's client tools."""
    return next(stage for stage in stages if stage.name == "ops")


def test_hadolint_reports_nothing():
    result = run_tool("hadolint", "--format", "json", "--failure-threshold", "style", str(DOCKERFILE))
    findings = json.loads(result.stdout or "[]")
    listed = "\n".join(f"line {f['line']}: {f['code']} {f['message']}" for f in findings)
    assert result.returncode == 0 and not findings, listed


def test_every_hadolint_ignore_says_why():
    lines = DOCKERFILE.read_text().splitlines()
    for index, line in enumerate(lines):
        if "hadolint ignore=" in line:
            reason = lines[index - 1].strip() if index else ""
            assert reason.startswith("#") and len(reason) > 20, f"line {index + 1}: an ignore needs a reason above it"


def test_the_image_is_built_in_stages_and_ships_from_a_slim_python(stages, runtime):
    assert len(stages) >= 2
    assert re.fullmatch(r"python:3\.1[12]-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?", runtime.image), runtime.image
    assert any(stage.name == "builder" for stage in stages[:-1])


def test_the_runtime_stage_installs_no_compiler(runtime):
    installs = re.findall(r"apt-get install[^&;]*", runtime.run_commands())
    packages = {word for command in installs for word in command.split() if not word.startswith("-")}
    packages = {p.split("=", 1)[0].strip("\"'") for p in packages} - {"apt-get", "install"}
    assert not packages & set(COMPILERS), packages


def test_the_runtime_stage_runs_as_uid_1001(runtime):
    user = runtime.last("USER")
    assert user is not None and user.arguments.split(":")[0] in {"1001"}, "USER must be the numeric uid 1001"
    assert "--uid 1001" in runtime.run_commands()


def test_the_api_port_is_exposed(runtime):
    assert [i.arguments for i in runtime.all("EXPOSE")] == ["3000"]


def test_the_health_check_uses_the_spec_timings_and_needs_no_curl(runtime):
    check = runtime.last("HEALTHCHECK")
    assert check is not None
    spec = {"interval": "30s", "timeout": "5s", "start-period": "60s", "retries": "3"}
    assert {key: check.flags().get(key) for key in spec} == spec
    command = check.exec_form()
    assert command is not None and command[0] == "python", command
    assert "/health" in " ".join(command)
    assert not {"curl", "wget"} & set(" ".join(command).split())


def test_the_default_command_is_sage_serve_in_production_on_all_interfaces(runtime):
    cmd = runtime.last("CMD")
    assert cmd is not None and cmd.exec_form() == ["sage", "serve"]
    env = runtime.env()
    assert env["SAGE_ENV"] == "production"
    assert env["SAGE_HOST"] == "0.0.0.0"
    assert env["SAGE_PORT"] == "3000"
    assert runtime.last("ENTRYPOINT") is None, "an ENTRYPOINT would break `command: [sage, ingest]` overrides"


def test_a_read_only_root_filesystem_has_a_declared_writable_tmp(runtime):
    volumes = [
        json.loads(v.arguments) if v.arguments.startswith("[") else v.arguments.split() for v in runtime.all("VOLUME")
    ]
    assert ["/tmp"] in volumes
    env = runtime.env()
    assert env["SAGE_DATA_DIR"].startswith("/tmp/")
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"


def test_postgresql_client_tools_match_the_server_major_version(ops):
    run = ops.run_commands()
    args = {i.arguments.split("=", 1)[0]: i.arguments.split("=", 1)[1] for i in ops.all("ARG") if "=" in i.arguments}
    run = run.replace("${PG_MAJOR}", args.get("PG_MAJOR", "${PG_MAJOR}"))
    majors = [int(m) for m in re.findall(r"postgresql-client-(\d+)", run)]
    assert majors and min(majors) >= SERVER_MAJOR, majors
    # The PGDG tools (built with OpenSSL) are the ones Sage uses, not the wheel's.
    bin_dir = ops.env()["SAGE_PG_BIN_DIR"].replace("${PG_MAJOR}", args["PG_MAJOR"])
    assert bin_dir == f"/usr/lib/postgresql/{args['PG_MAJOR']}/bin"


def test_the_runtime_image_carries_no_postgresql_client(runtime):
    assert "postgresql-client" not in runtime.run_commands()
    assert "apt-get install" not in runtime.run_commands()
    assert "SAGE_PG_BIN_DIR" not in runtime.env()
    assert not [i for i in runtime.all("COPY") if "pgdg" in i.arguments]


def test_the_ops_image_is_the_runtime_plus_the_client_tools_and_still_runs_as_1001(ops):
    assert ops.image == "runtime"
    assert ops.last("USER").arguments == "1001:1001"
    assert [i.arguments for i in ops.all("COPY") if "--from=builder" in i.arguments] == []


def test_the_shipped_venv_is_built_by_the_script_the_footprint_test_measures(stages, runtime):
    builder = next(stage for stage in stages if stage.name == "builder")
    assert (
        "runtime_venv.py --wheelhouse /wheels --constraints constraints.txt --venv /opt/sage" in builder.run_commands()
    )
    assert "--constraint constraints.txt" in builder.run_commands(), "dependencies must come from the lock"
    copies = [i.arguments for i in runtime.all("COPY") if "--from=builder" in i.arguments]
    assert copies == ["--from=builder /opt/sage /opt/sage"]


def test_the_build_context_holds_what_the_dockerfile_copies_and_no_secrets(stages):
    ignore = DockerIgnore((REPO / ".dockerignore").read_text())
    for source in copy_sources(stages):
        assert not ignore.ignored(source), f"{source} is copied but excluded from the build context"
        assert (REPO / source).exists(), source
    assert not ignore.ignored("src/sage/app.py")
    for private in (".env", ".git/config", ".venv/bin/python", "tests/conftest.py", "infra/Pulumi.yaml", "bench/x.py"):
        assert ignore.ignored(private), private
    assert ignore.ignored("src/sage/__pycache__/app.cpython-311.pyc")
