"""The static web app: served by `sage serve` at "/", behind every API route, and
fingerprinted for the CDN by scripts/fingerprint_frontend.py."""

from __future__ import annotations

import re
import runpy
import shutil
import uuid
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

from sage.app import create_app
from sage.settings import Settings, default_frontend_dir
from tests.delivery.tools import REPO

FRONTEND = REPO / "frontend"
IMPORT = re.compile(r"""(?:^|\n)\s*import\s[^;]*?from\s+["'](\.[^"']+)["']""")
API_PATH = re.compile(r"""["`](/api/v1/[^"`?]*)""")
fingerprint = runpy.run_path(str(REPO / "scripts" / "fingerprint_frontend.py"))["fingerprint"]


async def test_the_root_serves_the_web_app(app_client):
    response = await app_client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="assets/app.js">' in response.text
    script = await app_client.get("/assets/app.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]


async def test_api_routes_win_over_the_web_app(app_client):
    health = await app_client.get("/health")
    assert health.json() == {"status": "ok"}
    me = await app_client.get("/api/v1/users/me")
    assert me.status_code == 401
    assert me.json()["error"]["code"] == "unauthorized"
    docs = await app_client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


async def test_a_wrong_method_on_an_api_path_stays_a_405_not_a_missing_file(app_client):
    response = await app_client.get("/api/v1/auth/login")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


async def test_an_unknown_path_is_the_usual_json_404(app_client):
    response = await app_client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_no_frontend_directory_means_no_web_app(make_settings, database_url, valkey_url):
    settings = make_settings(database_url=database_url, valkey_url=valkey_url, frontend_dir=None)
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sage.test") as client:
            response = await client.get("/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_frontend_directory_defaults_to_the_checkout_and_an_empty_value_disables_it():
    assert default_frontend_dir() == FRONTEND
    assert Settings(frontend_dir="").frontend_dir is None
    assert Settings(frontend_dir=str(FRONTEND)).frontend_dir == FRONTEND


def _modules(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text(encoding="utf-8") for p in root.rglob("*.js")}


def test_every_module_import_names_a_file_that_exists():
    for name, source in _modules(FRONTEND).items():
        for specifier in IMPORT.findall(source):
            target = (FRONTEND / name).parent / specifier
            assert target.resolve().is_file(), f"{name} imports missing {specifier}"


async def test_every_api_path_the_app_calls_exists(app_client):
    called = set()
    for source in _modules(FRONTEND).values():
        # `${chat.id}` and the like become a well-formed id
        called |= {re.sub(r"\$\{[^}]+\}", str(uuid.uuid4()), path).rstrip("/") for path in API_PATH.findall(source)}
    plain = {re.sub(r"[0-9a-f-]{36}", "{id}", path) for path in called}
    assert {"/api/v1/market/tickers", "/api/v1/market/stream", "/api/v1/market/fear-greed", "/api/v1/chats"} <= plain
    for path in called - {"/api/v1/market/stream"}:  # a stream never ends; its route is checked by the market tests
        response = await app_client.get(path)
        missing = response.status_code == 404 and "No route" in response.json()["error"]["message"]
        assert not missing, f"the front end calls {path}, which the API does not have"


def test_fingerprinting_names_assets_by_content_and_rewires_the_page(tmp_path):
    renamed = fingerprint(FRONTEND, tmp_path / "dist")
    index = (tmp_path / "dist" / "index.html").read_text()
    assert set(renamed) == {p.relative_to(FRONTEND).as_posix() for p in (FRONTEND / "assets").rglob("*") if p.is_file()}
    for original, hashed in renamed.items():
        assert (tmp_path / "dist" / hashed).read_bytes() == (FRONTEND / original).read_bytes()
        assert re.fullmatch(r"assets/.+\.[0-9a-f]{12}\.(js|css)", hashed)
    assert '<script type="module" src="assets/app.' in index and '"assets/app.js"' not in index
    # Every relative import inside any module is mapped to its hashed file.
    for name, source in _modules(FRONTEND).items():
        for specifier in IMPORT.findall(source):
            plain = "./" + ((Path(name).parent / specifier).as_posix().replace("/./", "/"))
            assert f'"{plain}": "./{renamed[plain[2:]]}"' in index, plain
    assert (tmp_path / "dist" / "config.js").exists()


def test_a_changed_module_changes_only_its_own_name(tmp_path):
    copy = tmp_path / "frontend"
    shutil.copytree(FRONTEND, copy)
    before = fingerprint(copy, tmp_path / "before")
    (copy / "assets" / "chat.js").write_text((copy / "assets" / "chat.js").read_text() + "\n// changed\n")
    after = fingerprint(copy, tmp_path / "after")
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"assets/chat.js"}
