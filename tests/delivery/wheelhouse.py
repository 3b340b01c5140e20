"""An offline wheelhouse for the image-footprint test.

The Dockerfile downloads wheels from PyPI; tests may not leave 127.0.0.1. The same files
are already installed in this environment at the locked versions (dev.py installs with
constraints.txt), so each runtime dependency is packed back into a wheel from its RECORD.
pip then resolves Sage's wheel against this wheelhouse with `--no-index`, exactly as the
Dockerfile's builder does against the downloaded one.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import re
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

SKIPPED_METADATA = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}


def build_sage_wheel(repo: Path, out_dir: Path, work_dir: Path) -> Path:
    """`pip wheel --no-deps` of the working tree, from a copy (the build writes into its source)."""
    source = work_dir / "sage-source"
    source.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(repo / name, source / name)
    shutil.copytree(repo / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-build-isolation",  # no index to fetch setuptools from; the test extra installs it
            "--wheel-dir",
            str(out_dir),
            str(source),
        ],
        check=True,
        cwd=out_dir,
    )
    (wheel,) = out_dir.glob("sage-*.whl")
    return wheel


def wheel_requirements(wheel: Path) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        text = archive.read(name).decode()
    return [
        Requirement(line.partition(":")[2].strip()) for line in text.splitlines() if line.startswith("Requires-Dist:")
    ]


def runtime_closure(requirements: list[Requirement]) -> list[metadata.Distribution]:
    """Installed distributions these requirements pull in (no extras of the root: runtime only)."""
    found: dict[str, tuple[metadata.Distribution, set[str]]] = {}

    def visit(requirement: Requirement, parent_extras: set[str]) -> None:
        environments = [{"extra": extra} for extra in parent_extras or {""}]
        if requirement.marker is not None and not any(requirement.marker.evaluate(env) for env in environments):
            return
        key = canonicalize_name(requirement.name)
        distribution, extras = found.get(key, (metadata.distribution(requirement.name), set()))
        new_extras = set(requirement.extras) - extras
        if key in found and not new_extras:
            return
        extras |= set(requirement.extras)
        found[key] = (distribution, extras)
        for line in distribution.requires or []:
            visit(Requirement(line), extras | {""})

    for requirement in requirements:
        visit(requirement, {""})
    return [distribution for distribution, _ in found.values()]


def repack(distribution: metadata.Distribution, out_dir: Path) -> Path:
    """A wheel holding the files an installed distribution's RECORD lists."""
    name = re.sub(r"[-_.]+", "_", distribution.metadata["Name"])
    version = distribution.version
    dist_info = f"{name}-{version}.dist-info"
    installed_info = next(
        str(f).split("/")[0] for f in distribution.files or [] if str(f).split("/")[0].endswith(".dist-info")
    )
    scripts = {entry.name for entry in distribution.entry_points if entry.group in {"console_scripts", "gui_scripts"}}
    root = Path(distribution.locate_file(""))
    wheel = out_dir / f"{name}-{version}-{_tag_set(root / installed_info / 'WHEEL')}.whl"
    records: list[tuple[str, str, int]] = []
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_STORED) as archive:
        for file in distribution.files or []:
            arcname = _archive_name(str(file), installed_info, dist_info, name, version, scripts)
            if arcname is None:
                continue
            data = (root / file).read_bytes()
            archive.writestr(arcname, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            records.append((arcname, f"sha256={digest}", len(data)))
        record = io.StringIO()
        writer = csv.writer(record, lineterminator="\n")
        writer.writerows(records)
        writer.writerow((f"{dist_info}/RECORD", "", ""))
        archive.writestr(f"{dist_info}/RECORD", record.getvalue())
    return wheel


def _archive_name(
    path: str, installed_info: str, dist_info: str, name: str, version: str, scripts: set[str]
) -> str | None:
    if path.endswith(".pyc") or "/__pycache__/" in path:
        return None  # pip compiles on install; the image compiles in runtime_venv.py
    if path.startswith(f"{installed_info}/"):
        leaf = path[len(installed_info) + 1 :]
        return None if leaf in SKIPPED_METADATA else f"{dist_info}/{leaf}"
    if path.startswith("../"):
        # Outside site-packages: <venv>/bin/... scripts or other data files.
        relative = Path(path)
        while relative.parts and relative.parts[0] == "..":
            relative = Path(*relative.parts[1:])
        if relative.parts[:1] == ("bin",):
            return None if relative.name in scripts else f"{name}-{version}.data/scripts/{relative.name}"
        return f"{name}-{version}.data/data/{relative.as_posix()}"
    return path


def _tag_set(wheel_file: Path) -> str:
    """The compressed tag set of a WHEEL file's `Tag:` lines, e.g. py2.py3-none-any."""
    interpreters: list[str] = []
    abis: list[str] = []
    platforms: list[str] = []
    for line in wheel_file.read_text().splitlines():
        if line.startswith("Tag:"):
            interpreter, abi, platform = line.partition(":")[2].strip().split("-")
            for seen, value in ((interpreters, interpreter), (abis, abi), (platforms, platform)):
                if value not in seen:
                    seen.append(value)
    return "-".join(".".join(part) for part in (interpreters, abis, platforms))


def build_wheelhouse(repo: Path, work_dir: Path) -> tuple[Path, list[str]]:
    """(wheelhouse directory, names of the distributions in it besides sage)."""
    out_dir = work_dir / "wheels"
    out_dir.mkdir(parents=True)
    sage_wheel = build_sage_wheel(repo, out_dir, work_dir)
    names = []
    for distribution in runtime_closure(wheel_requirements(sage_wheel)):
        repack(distribution, out_dir)
        names.append(canonicalize_name(distribution.metadata["Name"]))
    return out_dir, sorted(names)
