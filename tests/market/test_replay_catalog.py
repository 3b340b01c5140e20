"""The embedded default (replay, offline): the catalog comes from the list shipped with the
recording, so search works without network; a listed symbol outside the recording gets an
honest 503 (no REST snapshot offline), never an invented price."""

from __future__ import annotations

import pytest


@pytest.fixture
def settings(make_settings, database_url, valkey_url):
    # ingestion elsewhere: this test is about what the API answers
    return make_settings(
        database_url=database_url, valkey_url=valkey_url, market_source="replay", ingest_in_process=False
    )


async def test_search_works_offline_from_the_shipped_catalog(app_client):
    body = (await app_client.get("/api/v1/market/symbols", params={"q": "chainlink"})).json()
    assert body["catalog_size"] >= 300
    assert body["symbols"][0]["symbol"] == "LINK/USDT"
    assert body["symbols"][0]["exchanges"] == ["binance", "gateio"]


async def test_a_listed_symbol_outside_the_recording_is_a_503_that_says_why(app_client):
    response = await app_client.get("/api/v1/market/tickers/LINK")
    assert response.status_code == 503
    error = response.json()["error"]
    assert "LINK/USDT" in error["message"] and "recorded session" in error["message"]
    assert error["details"] == {"symbol": "LINK/USDT", "source": "replay"}
    assert response.headers["retry-after"] == "60"
