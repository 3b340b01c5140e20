#!/usr/bin/env python3
"""Write the API's OpenAPI document, as the server would serve it at /openapi.json.

    python3 scripts/dump_openapi.py frontend/openapi.json

No server, database or network: `create_app(...).openapi()` only reads the routes. The
front end generates its API types from this file (`pnpm run api:types`), and CI checks that
regenerating gives no diff, so the client cannot drift from the server.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sage.app import create_app
from sage.settings import Settings


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    document = create_app(Settings(frontend_dir="")).openapi()
    Path(argv[0]).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
