"""The built web app (frontend/dist) served at "/" by `sage serve`, behind every API route.

* Vite names every file under assets/ by its content hash, so those are cached for a year
  (`immutable`); index.html names the current hashes and is revalidated on every load.
* Assets the build precompressed (`name.js.br`, `name.js.gz`: frontend/scripts/precompress.mjs)
  go out as such to a browser that accepts the encoding; the rest as they are.
* The app routes in the browser (/market/BTC-USDT, /chat/<id>): a path no file and no API
  route answers gets index.html (SPA fallback), except under the API's own prefixes, where
  the usual JSON 404 stays.
* A plain `Mount("/")` would also catch requests an API route turned down only for their
  method: Starlette prefers any full match over a method mismatch, so `GET /api/v1/auth/login`
  would become the app's page instead of the API's 405. This mount steps aside for every
  path some other route recognises.
"""

from __future__ import annotations

import mimetypes
import stat
from pathlib import Path

import anyio.to_thread
from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Match, Mount
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import Scope

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
# Paths that belong to the API, the docs or operations: never answered with the app's page.
API_PREFIXES = ("/api/", "/health", "/metrics", "/docs", "/redoc", "/openapi.json")
# Precompressed copies, best first: (Content-Encoding, file suffix).
ENCODINGS = (("br", ".br"), ("gzip", ".gz"))


class SinglePageApp(StaticFiles):
    """StaticFiles with the cache headers of a hashed build and index.html as the fallback."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if path.startswith("assets/"):
            encoded = await self._precompressed(path, scope)
            if encoded is not None:
                return encoded
        try:
            response = await super().get_response(path, scope)
        except HTTPException as exc:
            if exc.status_code != 404 or not _is_app_path(scope):
                raise
            response = await super().get_response("index.html", scope)
        if response.status_code == 404 and _is_app_path(scope):
            response = await super().get_response("index.html", scope)
        hashed = path.startswith("assets/") and response.status_code in (200, 304)
        response.headers["Cache-Control"] = IMMUTABLE if hashed else REVALIDATE
        if hashed:
            response.headers["Vary"] = "Accept-Encoding"  # a cache must not hand this to a gzip client
        return response

    async def _precompressed(self, path: str, scope: Scope) -> Response | None:
        """The best precompressed copy of an asset the client accepts, or None."""
        request_headers = Headers(scope=scope)
        accepted = _accepted_encodings(request_headers.get("accept-encoding", ""))
        media_type = mimetypes.guess_type(path)[0]
        for encoding, suffix in ENCODINGS:
            if encoding not in accepted:
                continue
            full_path, found = await anyio.to_thread.run_sync(self.lookup_path, path + suffix)
            if found is None or not stat.S_ISREG(found.st_mode):
                continue
            headers = {"Content-Encoding": encoding, "Vary": "Accept-Encoding", "Cache-Control": IMMUTABLE}
            response = FileResponse(full_path, stat_result=found, media_type=media_type, headers=headers)
            if self.is_not_modified(response.headers, request_headers):
                return NotModifiedResponse(response.headers)
            return response
        return None


def _accepted_encodings(header: str) -> set[str]:
    """Content codings an Accept-Encoding header allows ("gzip;q=0" refuses gzip)."""
    accepted: set[str] = set()
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        if params.replace(" ", "").lower() in ("q=0", "q=0.0", "q=0.00", "q=0.000"):
            continue
        if name:
            accepted.add(name.strip().lower())
    return accepted


def _is_app_path(scope: Scope) -> bool:
    path: str = scope["path"]
    if scope["method"] not in ("GET", "HEAD") or path.startswith(API_PREFIXES):
        return False
    # A missing asset (an old hash after a deploy) is a real 404, not the page.
    return not path.startswith("/assets/")


class FrontendMount(Mount):
    def __init__(self, directory: Path, routes: list[BaseRoute]) -> None:
        super().__init__("", app=SinglePageApp(directory=directory, html=True), name="frontend")
        self._routes = routes

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and str(scope["path"]).startswith(API_PREFIXES):
            return Match.NONE, {}  # the API's own 404/405 (a malformed id is no web-app page)
        for route in self._routes:
            if route is not self and route.matches(scope)[0] is not Match.NONE:
                return Match.NONE, {}
        return super().matches(scope)


def mount_frontend(app: FastAPI, directory: Path | None) -> None:
    """Serve the built app in `directory` at "/" if it has an index.html; call after every
    route is registered."""
    if directory is None or not (directory / "index.html").is_file():
        return
    app.router.routes.append(FrontendMount(directory, app.router.routes))
