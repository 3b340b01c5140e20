"""The Lambda package: standard library and boto3 only, and the app's own Discord rules."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.alarm_router.conftest import ROUTER_DIR, package_files

APP_LIMITS = Path(__file__).resolve().parents[2] / "src" / "sage" / "notify" / "discord_limits.py"
ALLOWED_THIRD_PARTY = {"boto3", "botocore"}


def test_the_package_takes_the_apps_discord_rules_file_itself():
    files = package_files()
    assert files["discord_limits.py"] == APP_LIMITS
    assert files["handler.py"] == ROUTER_DIR / "handler.py"
    assert not (ROUTER_DIR / "discord_limits.py").exists()


def test_the_loaded_router_uses_the_apps_limits(router):
    import sage.notify.discord_limits as app_limits

    assert Path(router.limits.__file__).read_bytes() == APP_LIMITS.read_bytes()
    assert router.limits.CONTENT_LIMIT == app_limits.CONTENT_LIMIT


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_package_imports_only_the_standard_library_boto3_and_itself():
    files = package_files()
    local = {Path(name).stem for name in files}
    for path in files.values():
        foreign = _imports(path) - set(sys.stdlib_module_names) - ALLOWED_THIRD_PARTY - local - {"__future__"}
        assert foreign == set(), f"{path.name} imports {foreign}"


def test_the_handler_loads_without_the_app(tmp_path, package_dir):
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(package_dir)!r})\n"
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
