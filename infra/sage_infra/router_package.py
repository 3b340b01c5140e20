"""The alarm-router Lambda's package: which files it holds, with no Pulumi in sight.

The package is the router directory's top-level modules (`handler.py`, no `__pycache__`, no
tests or editor leftovers) plus the app's own `src/sage/notify/discord_limits.py` as the
top-level module `discord_limits`, so the router and the app's notifier obey one file of
Discord rules. The infra program archives exactly these files (monitoring.py), and
tests/alarm_router loads the handler from a directory laid out from them, as Lambda would.
"""

from __future__ import annotations

from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[2]
APP_DISCORD_LIMITS = REPO_DIR / "src" / "sage" / "notify" / "discord_limits.py"
SHARED_MODULES = {"discord_limits.py": APP_DISCORD_LIMITS}


class RouterPackageError(ValueError):
    """The router directory cannot be packaged (no handler, or a module that shadows a shared one)."""


def router_files(router_dir: Path, shared: dict[str, Path] | None = None) -> dict[str, Path]:
    """File name in the archive -> the file on disk, sorted by name."""
    shared = SHARED_MODULES if shared is None else shared
    if not (router_dir / "handler.py").is_file():
        raise RouterPackageError(f"{router_dir} has no handler.py (alarmRouterPath must name the router's code)")
    own = {f.name: f for f in router_dir.glob("*.py") if f.is_file()}
    clash = sorted(set(own) & set(shared))
    if clash:
        raise RouterPackageError(
            f"{router_dir} holds {', '.join(clash)}, which the package takes from the app; delete the copy"
        )
    missing = sorted(name for name, path in shared.items() if not path.is_file())
    if missing:
        raise RouterPackageError(f"the app's {', '.join(missing)} is missing ({REPO_DIR / 'src'} must be checked out)")
    return dict(sorted({**own, **shared}.items()))
