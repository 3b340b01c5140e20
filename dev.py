#!/usr/bin/env python3
"""Set-up and run Sage from a fresh clone with nothing but Python 3.11+.

    python3 dev.py serve   install, then start Sage on its embedded defaults (http://127.0.0.1:3000)
    python3 dev.py test    install with the test tools, then run the whole test suite

Installs into ./.venv with the pinned versions in constraints.txt; re-installs only
when pyproject.toml or constraints.txt changed. Extra arguments go to `sage serve` or
to pytest.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"


def say(message: str) -> None:
    print(f"dev.py: {message}", file=sys.stderr, flush=True)


def install(extra: str) -> None:
    if sys.version_info < (3, 11):
        sys.exit("dev.py: Sage needs Python 3.11 or newer")
    if not PYTHON.exists():
        say(f"creating {VENV.name}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + (ROOT / "constraints.txt").read_bytes() + extra.encode()
    ).hexdigest()
    stamp = VENV / f".installed-{extra or 'base'}"
    if stamp.exists() and stamp.read_text() == digest:
        return
    say("installing dependencies (pinned by constraints.txt)")
    target = f".[{extra}]" if extra else "."
    subprocess.run(
        [
            str(PYTHON),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "-q",
            "-c",
            "constraints.txt",
            "-e",
            target,
        ],
        cwd=ROOT,
        check=True,
    )
    stamp.write_text(digest)


def ensure_valkey_binary() -> None:
    """The tests start a throwaway Valkey/Redis unless VALKEY_URL names one."""
    if os.environ.get("VALKEY_URL") or shutil.which("valkey-server") or shutil.which("redis-server"):
        return
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        say("no valkey-server or redis-server on PATH; installing Debian's redis-server")
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "redis-server"], check=False)
        if shutil.which("redis-server"):
            return
    sys.exit(
        "dev.py: the tests need Valkey or Redis: install valkey-server or redis-server "
        "(e.g. apt-get install redis-server), or set VALKEY_URL to a server they may flush"
    )


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"serve", "test"}:
        print(__doc__, file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    if command == "serve":
        install("")
        return subprocess.call([str(BIN / "sage"), "serve", *rest], cwd=ROOT)
    install("test")
    ensure_valkey_binary()
    return subprocess.call([str(PYTHON), "-m", "pytest", *rest], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
