"""The web app: its build (frontend/dist) served by `sage serve` at "/", behind every API
route, with the cache headers of a content-hashed build and index.html for the app's own
paths; its API calls and generated types agree with the server; dev.py rebuilds it only
when its sources change."""

from __future__ import annotations

import gzip
import re
import runpy
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from sage.app import create_app
from sage.settings import Settings, default_frontend_dir
from tests.delivery.tools import REPO

FRONTEND = REPO / "frontend"
INDEX = '<!doctype html><html><head><script type="module" src="/assets/index-Ab12Cd34.js"></script></head></html>'
# Endpoints the app calls only where the server has them (being added by other work):
# a 404 or 405 there is handled (tokens are dropped anyway; the stream is aborted anyway).
OPTIONAL_CALLS = {"/api/v1/auth/logout", "/api/v1/chats/{}/messages/{}/stop"}


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(INDEX)
    (root / "assets" / "index-Ab12Cd34.js").write_text("console.log('sage')\n")
    (root / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    return root


@pytest.fixture
async def web(
    make_settings: Callable[..., Settings], database_url: str, valkey_url: str, dist: Path
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(database_url=database_url, valkey_url=valkey_url, frontend_dir=str(dist))
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sage.test") as client:
            yield client


async def test_the_root_serves_the_built_page_revalidated_on_every_load(web):
    response = await web.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.text == INDEX
    assert response.headers["cache-control"] == "no-cache"


async def test_hashed_assets_are_cached_for_a_year(web):
    response = await web.get("/assets/index-Ab12Cd34.js")
    assert response.status_code == 200
    assert "javascript" in response.headers["content-type"]
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"


async def test_other_files_at_the_root_are_revalidated(web):
    response = await web.get("/favicon.svg")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize(
    "path", ["/market", "/market/BTC-USDT", "/chat/0b7e3c1e-8f0a-4c4e-9a53-5a3c2f4b1d11", "/account"]
)
async def test_the_apps_own_paths_get_the_page(web, path):
    response = await web.get(path)
    assert response.status_code == 200
    assert response.text == INDEX
    assert response.headers["cache-control"] == "no-cache"


def precompress(dist: Path) -> tuple[bytes, bytes, bytes]:
    """The build's .br and .gz copies of the entry chunk (as frontend/scripts/precompress.mjs
    writes them), with bytes that tell the three files apart."""
    plain = (dist / "assets" / "index-Ab12Cd34.js").read_bytes()
    br = b"brotli bytes of the entry chunk"
    gz = gzip.compress(plain)
    (dist / "assets" / "index-Ab12Cd34.js.br").write_bytes(br)
    (dist / "assets" / "index-Ab12Cd34.js.gz").write_bytes(gz)
    return plain, br, gz


async def raw_get(web: httpx.AsyncClient, path: str, **headers: str) -> tuple[httpx.Response, bytes]:
    """A GET whose body is read as sent (httpx would decode it)."""
    response = await web.send(web.build_request("GET", path, headers=headers), stream=True)
    body = b"".join([chunk async for chunk in response.aiter_raw()])
    await response.aclose()
    return response, body


async def test_a_precompressed_asset_goes_out_in_the_best_encoding_the_browser_accepts(web, dist):
    plain, br, gz = precompress(dist)
    response, body = await raw_get(web, "/assets/index-Ab12Cd34.js", **{"Accept-Encoding": "gzip, deflate, br"})
    assert (response.status_code, response.headers["content-encoding"], body) == (200, "br", br)
    assert "javascript" in response.headers["content-type"]
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "Accept-Encoding" in response.headers["vary"]
    response, body = await raw_get(web, "/assets/index-Ab12Cd34.js", **{"Accept-Encoding": "gzip"})
    assert (response.headers["content-encoding"], body) == ("gzip", gz)
    assert gzip.decompress(body) == plain
    assert "javascript" in response.headers["content-type"]


@pytest.mark.parametrize("accept", ["identity", "gzip;q=0, br;q=0", ""])
async def test_a_browser_that_refuses_the_encodings_gets_the_plain_asset(web, dist, accept):
    plain, _, _ = precompress(dist)
    response, body = await raw_get(web, "/assets/index-Ab12Cd34.js", **{"Accept-Encoding": accept})
    assert (response.status_code, body) == (200, plain)
    assert "content-encoding" not in response.headers
    assert "Accept-Encoding" in response.headers["vary"]


async def test_a_precompressed_asset_answers_a_revalidation_with_304(web, dist):
    precompress(dist)
    first, _ = await raw_get(web, "/assets/index-Ab12Cd34.js", **{"Accept-Encoding": "gzip"})
    again, body = await raw_get(
        web, "/assets/index-Ab12Cd34.js", **{"Accept-Encoding": "gzip", "If-None-Match": first.headers["etag"]}
    )
    assert (again.status_code, body) == (304, b"")


async def test_a_missing_hashed_asset_is_a_404_not_the_page(web):
    response = await web.get("/assets/index-OldHash1.js")
    assert response.status_code == 404
    assert response.text != INDEX


async def test_api_routes_win_over_the_web_app(web):
    health = await web.get("/health")
    assert health.json() == {"status": "ok"}
    me = await web.get("/api/v1/users/me")
    assert me.status_code == 401
    assert me.json()["error"]["code"] == "unauthorized"
    docs = await web.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


async def test_an_unknown_api_path_is_the_usual_json_404_not_the_page(web):
    response = await web.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_any_method_on_an_unknown_api_path_is_the_apis_404_not_the_web_apps_405(web):
    response = await web.patch("/api/v1/chats/not-a-uuid", json={"title": "x"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_a_wrong_method_on_an_api_path_stays_a_405(web):
    response = await web.get("/api/v1/auth/login")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


async def test_a_post_to_an_app_path_is_not_answered_with_the_page(web):
    response = await web.post("/market")
    assert response.status_code in (404, 405)
    assert response.text != INDEX


async def test_no_build_means_no_web_app(make_settings, database_url, valkey_url, tmp_path):
    empty = tmp_path / "not-built"
    empty.mkdir()
    settings = make_settings(database_url=database_url, valkey_url=valkey_url, frontend_dir=str(empty))
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sage.test") as client:
            response = await client.get("/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_frontend_directory_defaults_to_the_checkouts_build_and_an_empty_value_disables_it():
    assert default_frontend_dir() == FRONTEND / "dist"
    assert Settings(frontend_dir="").frontend_dir is None
    assert Settings(frontend_dir=str(FRONTEND / "dist")).frontend_dir == FRONTEND / "dist"


# --- the app's source against the server's API ---------------------------------------------
def _openapi() -> dict[str, Any]:
    return create_app(Settings(frontend_dir="")).openapi()


def _template(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def test_every_api_path_the_app_calls_exists():
    sources = "\n".join(
        p.read_text() for p in (FRONTEND / "src").rglob("*.ts*") if ".test." not in p.name and p.name != "schema.d.ts"
    )
    literal = re.compile(r"""["`](/api/v1/[^"`?]*)""")
    called = {_template(re.sub(r"\$\{[^}]+\}", "{}", path)).rstrip("/") for path in literal.findall(sources)}
    served = {_template(path) for path in _openapi()["paths"]}
    assert {"/api/v1/market/tickers", "/api/v1/market/stream", "/api/v1/chats", "/api/v1/auth/login"} <= called
    assert called - served <= OPTIONAL_CALLS, (
        f"the app calls paths the API does not have: {called - served - OPTIONAL_CALLS}"
    )


def test_the_generated_api_types_list_exactly_the_servers_paths():
    """The full check (regenerating gives no diff) runs in CI with Node; this one needs none."""
    schema = (FRONTEND / "src" / "api" / "schema.d.ts").read_text()
    typed = set(re.findall(r'^    "(/[^"]*)": \{', schema, re.MULTILINE))
    assert typed == set(_openapi()["paths"]), (
        "run: python3 scripts/dump_openapi.py frontend/openapi.json && pnpm run api:types"
    )


def test_the_old_static_app_is_gone():
    assert not (FRONTEND / "assets").exists() and not (FRONTEND / "config.js").exists()
    assert not (REPO / "scripts" / "fingerprint_frontend.py").exists()
    assert (FRONTEND / "pnpm-lock.yaml").is_file() and '"react"' in (FRONTEND / "package.json").read_text()


# --- dev.py: rebuild only when needed -------------------------------------------------------
@pytest.fixture
def devpy(tmp_path: Path) -> dict[str, Any]:
    copy = tmp_path / "frontend"
    copy.mkdir()
    for name in ("package.json", "pnpm-lock.yaml", "index.html", "vite.config.ts", "tsconfig.json"):
        shutil.copy2(FRONTEND / name, copy / name)
    shutil.copytree(FRONTEND / "src", copy / "src")
    module = runpy.run_path(str(REPO / "dev.py"))
    module["frontend_digest"].__globals__["FRONTEND"] = copy
    return {"digest": module["frontend_digest"], "root": copy}


def test_the_build_digest_changes_with_a_source_and_only_then(devpy):
    root = devpy["root"]
    before = devpy["digest"]()
    assert devpy["digest"]() == before
    (root / "node_modules").mkdir()
    (root / "node_modules" / "x.js").write_text("not an input")
    assert devpy["digest"]() == before
    main = root / "src" / "main.tsx"
    main.write_text(main.read_text() + "\n// changed\n")
    assert devpy["digest"]() != before


def test_the_build_digest_changes_with_the_lockfile(devpy):
    before = devpy["digest"]()
    lock = devpy["root"] / "pnpm-lock.yaml"
    lock.write_text(lock.read_text() + "\n# changed\n")
    assert devpy["digest"]() != before
