async def test_health_answers_ok(app_client):
    response = await app_client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_me_returns_the_logged_in_user(app_client, auth_headers):
    response = await app_client.get("/api/v1/users/me", headers=auth_headers)
    assert response.status_code == 200
    assert response.json()["email"].endswith("@example.com")
