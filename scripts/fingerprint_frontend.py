#!/usr/bin/env python3
"""Prepare frontend/ for CloudFront: content-hashed asset names, so they can be cached forever.

    python3 scripts/fingerprint_frontend.py frontend dist

The app has no build step: browsers load its ES modules as written, and that is how
`sage serve` and the compose stack serve it. For the CDN, every file under assets/ is
copied as `name.<hash>.ext` and index.html is rewritten to reach them:

* the stylesheet and the entry module's URLs are replaced by the hashed names;
* the import map lists every module's plain URL with its hashed one, so `import "./api.js"`
  inside any module resolves to `api.<hash>.js`. A module's name then depends on its own
  bytes only: changing chat.js renames chat.js and nothing else.

index.html and config.js keep their names and are uploaded with `Cache-Control: no-cache`;
the hashed files with `max-age=31536000, immutable` (see .github/workflows/deploy-frontend.yml).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
from pathlib import Path

ASSETS = "assets"
HASH_LENGTH = 12
IMPORT_MAP = re.compile(r'<script type="importmap">.*?</script>', re.DOTALL)


def hashed_name(path: Path) -> str:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:HASH_LENGTH]
    return f"{path.stem}.{digest}{path.suffix}"


def fingerprint(source: Path, target: Path) -> dict[str, str]:
    """Write the deployable tree to `target`; returns {original URL: hashed URL}."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(ASSETS, ".*"))
    renamed: dict[str, str] = {}
    for asset in sorted((source / ASSETS).rglob("*")):
        if not asset.is_file() or asset.name.startswith("."):
            continue
        relative = asset.relative_to(source)
        hashed = relative.with_name(hashed_name(asset))
        (target / hashed).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(asset, target / hashed)
        renamed[relative.as_posix()] = hashed.as_posix()

    index = target / "index.html"
    html = index.read_text(encoding="utf-8")
    modules = {f"./{old}": f"./{new}" for old, new in renamed.items() if old.endswith(".js")}
    import_map = json.dumps({"imports": modules}, indent=2, sort_keys=True)
    if not IMPORT_MAP.search(html):
        raise SystemExit('fingerprint_frontend: index.html has no <script type="importmap"> to fill')
    for old, new in renamed.items():
        html = html.replace(f'"{old}"', f'"{new}"').replace(f'"./{old}"', f'"./{new}"')
    # After the replacements above, which must not touch the map's keys (the plain names).
    html = IMPORT_MAP.sub(lambda _: f'<script type="importmap">\n{import_map}\n    </script>', html, count=1)
    index.write_text(html, encoding="utf-8")
    return renamed


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    source, target = Path(argv[0]), Path(argv[1])
    if not (source / "index.html").is_file():
        print(f"fingerprint_frontend: {source}/index.html not found", file=sys.stderr)
        return 2
    renamed = fingerprint(source, target)
    for old, new in renamed.items():
        print(f"{old} -> {new}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
