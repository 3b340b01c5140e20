"""Helpers for tests that talk to the API as a user."""

from __future__ import annotations

import uuid

import httpx


async def register_and_login(
    client: httpx.AsyncClient, email: str | None = None, password: str = "correct horse battery"
) -> dict[str, str]:
    """Helper for tests: a new user; returns the login response plus the email."""
    email = email or f"user-{uuid.uuid4().hex[:8]}@example.com"
    response = await client.post("/api/v1/auth/register", json={"email": email, "password": password})
    assert response.status_code == 201, response.text
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return {**response.json(), "email": email}
