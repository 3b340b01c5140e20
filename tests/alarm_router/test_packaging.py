"""The Lambda package: standard library and boto3 only, and the same Discord rules as the app."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.alarm_router.conftest import ROUTER_DIR

APP_LIMITS = Path(__file__).resolve().parents[2] / "src" / "sage" / "notify" / "discord_limits.py"
ALLOWED_THIRD_PARTY = {"boto3", "botocore"}


def test_the_routers_discord_rules_are_a_byte_identical_copy_of_the_apps():
    # If this fails: cp src/sage/notify/discord_limits.py infra/alarm_router/discord_limits.py
    assert (ROUTER_DIR / "discord_limits.py").read_bytes() == APP_LIMITS.read_bytes()


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_package_imports_only_the_standard_library_boto3_and_itself():
    local = {p.stem for p in ROUTER_DIR.glob("*.py")}
    for path in ROUTER_DIR.glob("*.py"):
        foreign = _imports(path) - set(sys.stdlib_module_names) - ALLOWED_THIRD_PARTY - local - {"__future__"}
        assert foreign == set(), f"{path.name} imports {foreign}"


def test_the_handler_loads_without_the_app(tmp_path):
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(ROUTER_DIR)!r})\n"
        "import handler\n"
        "assert callable(handler.handler)\n"
        "leaked = [m for m in sys.modules if m == 'sage' or m.startswith('sage.')]\n"
        "assert not leaked, leaked\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-B", "-c", code], capture_output=True, text=True, cwd=tmp_path, env={"PATH": "/usr/bin:/bin"}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
