"""The GitHub Actions workflows: schema-valid, zizmor-clean, least-privileged, pinned, and
doing what the issue and spec 8 ask of each."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.delivery.tools import REPO, WORKFLOWS, load_yaml, readme_test_command, run_tool

WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.yml"))
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"#\s*v\d+(\.\d+)*\s*$")


def workflow(name: str) -> dict[str, Any]:
    return load_yaml(WORKFLOWS / name)


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps", []))


def runs(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in steps(job))


def uses(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in steps(job) if step.get("uses", "").startswith(action + "@")]


def test_the_four_workflows_exist():
    assert {p.name for p in WORKFLOW_FILES} >= {"ci.yml", "deploy-backend.yml", "deploy-frontend.yml", "infra.yml"}


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_each_workflow_follows_github_workflow_schema(path: Path):
    result = run_tool("check-jsonschema", "--builtin-schema", "vendor.github-workflows", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_dependabot_config_follows_its_schema():
    result = run_tool(
        "check-jsonschema", "--builtin-schema", "vendor.dependabot", str(REPO / ".github" / "dependabot.yml")
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing():
    result = run_tool("zizmor", "--offline", "--format", "json", str(REPO / ".github"))
    findings = json.loads(result.stdout or "[]")
    listed = "\n".join(f"{f['ident']}: {f['desc']} ({f['locations'][0]['symbolic']['key']})" for f in findings)
    assert result.returncode == 0 and not findings, listed or result.stderr


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_each_workflow_grants_least_privilege_at_the_top(path: Path):
    permissions = load_yaml(path)["permissions"]
    assert permissions == {} or set(permissions.values()) == {"read"}, permissions


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_each_workflow_has_a_concurrency_group_and_every_job_a_timeout(path: Path):
    document = load_yaml(path)
    assert document["concurrency"]["group"]
    for name, job in document["jobs"].items():
        if "uses" in job:
            continue  # a reusable-workflow call: its own jobs carry the timeouts
        assert 0 < int(job["timeout-minutes"]) <= 90, f"{path.name}:{name}"


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_third_party_actions_are_pinned_to_a_commit_with_its_version_noted(path: Path):
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        match = re.match(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", line)
        if not match or match[1].startswith(("./", "$/")):
            continue
        assert PINNED.match(match[1]), f"{path.name}:{number}: {match[1]} is not pinned to a full commit SHA"
        assert VERSION_COMMENT.search(match[2]), f"{path.name}:{number}: say which version the SHA is (# vX.Y.Z)"


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_aws_is_reached_only_through_oidc_role_assumption(path: Path):
    text = path.read_text()
    assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text
    for name, job in load_yaml(path)["jobs"].items():
        logins = uses(job, "aws-actions/configure-aws-credentials")
        token = job.get("permissions", {}).get("id-token")
        assert (token == "write") == bool(logins), f"{name}: id-token: write exactly where AWS is used"
        for login in logins:
            assert login["with"]["role-to-assume"], name


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_checkouts_do_not_leave_the_token_on_disk(path: Path):
    for job in load_yaml(path)["jobs"].values():
        for step in uses(job, "actions/checkout"):
            assert step["with"]["persist-credentials"] is False


# --- ci.yml ---------------------------------------------------------------------------------
def test_ci_runs_on_pull_requests_and_pushes_and_can_be_called():
    triggers = workflow("ci.yml")["on"]
    assert {"pull_request", "push", "workflow_call"} <= set(triggers)


def test_ci_runs_the_readme_test_command_exactly():
    command = readme_test_command()
    job = workflow("ci.yml")["jobs"]["test"]
    assert command in [line.strip() for line in runs(job).splitlines()]


def test_the_ci_script_runs_the_readme_test_command_exactly():
    command = readme_test_command()
    assert command in [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]


def test_ci_tests_against_postgresql_18_and_valkey_8_service_containers():
    job = workflow("ci.yml")["jobs"]["test"]
    services = job["services"]
    assert services["postgres"]["image"].split(":")[1].split(".")[0].startswith("18")
    assert services["valkey"]["image"] == "valkey/valkey:8" or services["valkey"]["image"].startswith("valkey/valkey:8")
    database = job["env"]["DATABASE_URL"]
    published = {int(p.split(":")[0]) for s in services.values() for p in s["ports"]}
    assert re.match(r"postgresql://\w+:\w+@localhost:(\d+)/", database)
    assert int(re.search(r"@localhost:(\d+)/", database)[1]) in published
    assert int(re.search(r"localhost:(\d+)", job["env"]["VALKEY_URL"])[1]) in published
    assert "--health-cmd" in services["postgres"]["options"] and "--health-cmd" in services["valkey"]["options"]


def test_ci_covers_lint_types_infra_and_the_image():
    jobs = workflow("ci.yml")["jobs"]
    commands = {name: runs(job) for name, job in jobs.items()}
    assert any("ruff check" in c for c in commands.values()) and any(
        "ruff format --check" in c for c in commands.values()
    )
    assert any("mypy" in c for c in commands.values())
    assert any("infra/tests" in c for c in commands.values())
    image = jobs["image"]
    assert uses(image, "docker/build-push-action")
    assert "sage db migrate" in runs(image) and "sage db backup" in runs(image) and "--read-only" in runs(image)


def test_ci_caches_dependencies():
    jobs = workflow("ci.yml")["jobs"]
    cached = [
        name
        for name, job in jobs.items()
        if uses(job, "actions/cache") or any(s.get("with", {}).get("cache") for s in uses(job, "actions/setup-python"))
    ]
    assert {"lint", "types", "test", "infra"} <= set(cached)


# --- deploy-backend.yml ---------------------------------------------------------------------
def test_backend_deploys_from_main_when_the_service_changes():
    document = workflow("deploy-backend.yml")
    push = document["on"]["push"]
    assert push["branches"] == ["main"]
    assert {"src/**", "Dockerfile", "pyproject.toml", "constraints.txt"} <= set(push["paths"])
    assert document["jobs"]["ci"]["uses"].endswith(".github/workflows/ci.yml")
    assert document["jobs"]["deploy"]["needs"] == "ci"
    assert document["concurrency"]["cancel-in-progress"] is False


def test_backend_image_is_tagged_with_the_commit_and_latest():
    job = workflow("deploy-backend.yml")["jobs"]["deploy"]
    (build,) = uses(job, "docker/build-push-action")
    assert build["with"]["tags"].endswith(":${{ github.sha }}") and build["with"]["push"] is True
    assert "--image-tag latest" in runs(job)


def test_backend_migrates_before_updating_services_and_stops_if_the_migration_fails():
    job = workflow("deploy-backend.yml")["jobs"]["deploy"]
    names = [step.get("name", "") for step in steps(job)]
    script = runs(job)
    migration = next(i for i, s in enumerate(steps(job)) if "aws ecs run-task" in s.get("run", ""))
    update = next(i for i, s in enumerate(steps(job)) if "aws ecs update-service" in s.get("run", ""))
    assert migration < update, names
    migrate_step = steps(job)[migration]["run"]
    assert "exitCode" in migrate_step and "exit 1" in migrate_step
    assert "$ECS_INGESTOR_SERVICE" in steps(job)[update]["run"] and "$ECS_API_SERVICE" in steps(job)[update]["run"]
    assert "aws ecs wait services-stable" in script


def test_backend_reports_a_circuit_breaker_rollback():
    job = workflow("deploy-backend.yml")["jobs"]["deploy"]
    script = runs(job)
    assert "PRIMARY" in script and "rolloutState" in script and "rolled back" in script
    assert any(step.get("if") == "failure()" for step in steps(job))


# --- deploy-frontend.yml --------------------------------------------------------------------
def test_frontend_builds_with_pnpm_uploads_with_the_right_cache_headers_then_invalidates():
    document = workflow("deploy-frontend.yml")
    assert "frontend/**" in document["on"]["push"]["paths"]
    job = document["jobs"]["deploy"]
    script = runs(job)
    env = job["env"]
    assert "immutable" in env["LONG_CACHE"] and "max-age=31536000" in env["LONG_CACHE"]
    assert env["NO_CACHE"] == "no-cache"
    assert "pnpm install --frozen-lockfile" in script and "pnpm run build" in script
    assert re.search(r"aws s3 sync frontend/dist/assets .*LONG_CACHE", script)
    assert re.search(r'aws s3 sync frontend/dist .*--exclude "assets/\*"(.|\n)*NO_CACHE', script)
    assert "aws cloudfront create-invalidation" in script and "/index.html" in script
    assert "fingerprint_frontend" not in script


def test_frontend_deploy_keeps_the_previous_releases_assets():
    """An open page must still load its lazy chunks after a deploy: no `--delete` on the
    hashed assets; only assets older than the retention and unused by this build go."""
    job = workflow("deploy-frontend.yml")["jobs"]["deploy"]
    for line in runs(job).splitlines():
        if "s3 sync" in line and "assets" in line.split("s3://")[-1]:
            assert "--delete" not in line, line
    assert int(job["env"]["ASSET_RETENTION_DAYS"]) >= 1
    assert "LastModified<" in runs(job) and "frontend/dist/$key" in runs(job)


# --- infra.yml ------------------------------------------------------------------------------
def test_infra_previews_pull_requests_with_the_policy_pack_and_applies_main_per_stack():
    document = workflow("infra.yml")
    assert "infra/**" in document["on"]["pull_request"]["paths"]
    jobs = document["jobs"]
    preview = jobs["preview"]
    assert preview["strategy"]["matrix"]["stack"] == ["dev", "prod"]
    assert "pulumi preview" in runs(preview) and "--policy-pack policy" in runs(preview)
    assert all(
        step.get("working-directory") == "infra" for step in steps(preview) if "pulumi preview" in step.get("run", "")
    )
    assert (REPO / "infra" / "policy" / "PulumiPolicy.yaml").exists()
    for stack in ("dev", "prod"):
        job = jobs[f"up-{stack}"]
        assert f'{stack}" --policy-pack policy' in runs(job) and "pulumi up --yes" in runs(job)
        assert job["environment"] == f"infra-{stack}"
    assert jobs["up-prod"]["needs"] == "up-dev"
    assert "refs/heads/main" in jobs["up-dev"]["if"]
