"""The static web app (frontend/) served at "/" by `sage serve`, behind every API route.

A plain `Mount("/")` would also catch requests an API route turned down only for their
method: Starlette prefers any full match over a method mismatch, so `GET /api/v1/auth/login`
would become the static files' 404 instead of the API's 405. This mount steps aside for
every path some other route recognises.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.routing import BaseRoute, Match, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope


class FrontendMount(Mount):
    def __init__(self, directory: Path, routes: list[BaseRoute]) -> None:
        super().__init__("", app=StaticFiles(directory=directory, html=True), name="frontend")
        self._routes = routes

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        for route in self._routes:
            if route is not self and route.matches(scope)[0] is not Match.NONE:
                return Match.NONE, {}
        return super().matches(scope)


def mount_frontend(app: FastAPI, directory: Path | None) -> None:
    """Serve `directory` at "/" if it exists; call after every route is registered."""
    if directory is None or not directory.is_dir():
        return
    app.router.routes.append(FrontendMount(directory, app.router.routes))
