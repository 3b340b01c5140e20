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


# The forms of `uses:` Sage accepts (GitHub docs, "Workflow syntax": jobs.<job_id>.steps[*].uses
# and jobs.<job_id>.uses): a repository action or reusable workflow `owner/repo[/path]@ref`
# (here the ref must be a full commit SHA), a local action or reusable workflow `./path`, and a
# Docker image `docker://image` (here pinned by digest). GitHub.com also takes `$/path` since
# 2026-07 (runner >= 2.336.0); Sage does not use it: GitHub Enterprise Server and actionlint do
# not understand it (see .github/zizmor.yml), and `./path` is equivalent for a reusable workflow.
REMOTE_USES = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(?:/[\w./-]+)?@[0-9a-f]{40}$")
LOCAL_USES = re.compile(r"^\./(?!\.\.?/)[\w./-]+$")
DOCKER_USES = re.compile(r"^docker://[\w./:-]+@sha256:[0-9a-f]{64}$")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$")


def uses_problem(reference: str) -> str | None:
    """Why a `uses:` value is not one of the three legal, pinned forms (None when it is)."""
    if reference.startswith("$/"):
        return "self-repository `$/` form: write it as ./path (see .github/zizmor.yml)"
    if reference.startswith("./"):
        return None if LOCAL_USES.match(reference) and "/../" not in reference else "malformed local path"
    if reference.startswith("docker://"):
        return None if DOCKER_USES.match(reference) else "docker image not pinned by @sha256 digest"
    if REMOTE_USES.match(reference):
        return None
    if re.match(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(?:/[\w./-]+)?@\S+$", reference):
        return "not pinned to a full 40-hex commit SHA"
    return "not owner/repo[/path]@<sha>, ./path or docker://image@sha256:<digest>"


def uses_lines(text: str) -> list[tuple[int, str, str]]:
    """(line number, reference, rest of the line) of every `uses:` in a workflow's text."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = USES_LINE.match(line)
        if match:
            found.append((number, match[1].strip("'\""), match[2]))
    return found


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_every_uses_is_one_of_githubs_legal_forms_and_pinned(path: Path):
    references = uses_lines(path.read_text())
    assert references, f"{path.name} uses nothing"
    for number, reference, rest in references:
        problem = uses_problem(reference)
        assert problem is None, f"{path.name}:{number}: uses: {reference}: {problem}"
        if not reference.startswith("./"):
            assert VERSION_COMMENT.search(rest), f"{path.name}:{number}: say which version the SHA is (# vX.Y.Z)"


@pytest.mark.parametrize(
    "line",
    [
        "    uses: $/.github/workflows/ci.yml",  # deploy-backend.yml's former CI call
        "    uses: .github/workflows/ci.yml",
        "      - uses: actions/checkout@v5",
        "      - uses: actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a",  # 39 hex
        "      - uses: actions/checkout",
        "      - uses: docker://alpine:3.22",
        "      - uses: ../elsewhere/action",
        "      - uses: ./../elsewhere/action",
    ],
)
def test_an_illegal_or_unpinned_uses_is_rejected(line: str):
    ((_, reference, _),) = uses_lines(line)
    assert uses_problem(reference) is not None


@pytest.mark.parametrize(
    "reference",
    [
        "./.github/workflows/ci.yml",
        "./.github/actions/setup",
        "actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8",
        "octo-org/example-repo/.github/workflows/deploy.yml@08c6903cd8c0fde910a37f88322edcfb5dd907a8",
        "docker://ghcr.io/owner/image@sha256:" + "a" * 64,
    ],
)
def test_the_three_legal_forms_are_accepted(reference: str):
    assert uses_problem(reference) is None


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
    builds = {step["with"]["target"]: step for step in uses(image, "docker/build-push-action")}
    assert set(builds) == {"runtime", "ops"}
    assert '"$OPS_IMAGE" sage db migrate' in runs(image) and '"$OPS_IMAGE" sage db backup' in runs(image)
    assert "--read-only" in runs(image)


def test_ci_gates_the_runtime_image_on_its_measured_unpacked_size():
    image = workflow("ci.yml")["jobs"]["image"]
    script = runs(image)
    assert "docker image inspect" in script and "{{.Size}}" in script
    assert "RUNTIME_UNPACKED_BUDGET_BYTES" in script and "exit 1" in script
    assert int(image["env"]["RUNTIME_UNPACKED_BUDGET_BYTES"]) < int(image["env"]["IMAGE_BUDGET_BYTES"]) * 2
    assert "command -v pg_dump" in script, "the runtime image must not carry the PostgreSQL client"


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
    assert document["jobs"]["image"]["needs"] == "ci"
    assert document["jobs"]["deploy"]["needs"] == "image"
    assert document["concurrency"]["cancel-in-progress"] is False


def test_backend_image_is_tagged_with_the_commit_and_latest():
    jobs = workflow("deploy-backend.yml")["jobs"]
    builds = {step["with"]["target"]: step for step in uses(jobs["image"], "docker/build-push-action")}
    assert builds["runtime"]["with"]["tags"].endswith(":${{ github.sha }}-${{ matrix.arch }}")
    assert builds["ops"]["with"]["tags"].endswith(":${{ github.sha }}-ops-${{ matrix.arch }}")
    assert all(b["with"]["push"] is True for b in builds.values())
    job = jobs["deploy"]
    assert '"$REPOSITORY_URI:$SHA-amd64" "$REPOSITORY_URI:$SHA-arm64"' in runs(job)
    assert '--tag "$REPOSITORY_URI:latest" "$REPOSITORY_URI:$SHA"' in runs(job)
    for family in ("MIGRATION", "BACKUP", "VERIFY_BACKUP", "BOOTSTRAP_ROLES"):
        assert f'register "$ECS_{family}_TASK_FAMILY" "$OPS_IMAGE"' in runs(job)


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


def test_infra_applies_only_after_ci_passes_on_the_merged_commit():
    jobs = workflow("infra.yml")["jobs"]
    assert jobs["ci"]["uses"] == "./.github/workflows/ci.yml"
    assert jobs["up-dev"]["needs"] == "ci"
    assert jobs["up-prod"]["needs"] == "up-dev"


def test_infra_previews_run_only_for_this_repositorys_branches_in_the_reviewed_environment():
    preview = workflow("infra.yml")["jobs"]["preview"]
    assert "github.event.pull_request.head.repo.full_name == github.repository" in preview["if"]
    assert preview["environment"] == "infra-preview"
    (login,) = uses(preview, "aws-actions/configure-aws-credentials")
    assert login["with"]["role-to-assume"] == "${{ vars.AWS_INFRA_PREVIEW_ROLE_ARN }}"
    assert "pulumi up" not in runs(preview)


def test_the_image_is_multi_arch_each_architecture_built_natively_without_emulation():
    """One manifest list serves x86 and Graviton (lean) stacks: amd64 and arm64 are built on
    runners of their own architecture, and no QEMU step emulates one on the other."""
    document = workflow("deploy-backend.yml")
    image = document["jobs"]["image"]
    runners = {entry["arch"]: entry["runner"] for entry in image["strategy"]["matrix"]["include"]}
    assert runners == {"amd64": "ubuntu-24.04", "arm64": "ubuntu-24.04-arm"}
    assert image["runs-on"] == "${{ matrix.runner }}"
    for build in uses(image, "docker/build-push-action"):
        assert build["with"]["platforms"] == "linux/${{ matrix.arch }}"
    assert not any(uses(job, "docker/setup-qemu-action") for job in document["jobs"].values() if "steps" in job)
    for target in ("$SHA", "$SHA-ops"):
        assert f'imagetools create --tag "$REPOSITORY_URI:{target}"' in runs(document["jobs"]["deploy"])
