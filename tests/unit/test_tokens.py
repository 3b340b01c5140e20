import uuid

import pytest

from sage.auth.tokens import ACCESS, REFRESH, TokenCodec
from sage.errors import Unauthorized

codec = TokenCodec("unit-test-secret-of-sufficient-length-123", access_ttl=60, refresh_ttl=3600)


def test_access_token_round_trips_the_user_id() -> None:
    user = uuid.uuid4()
    claims = codec.decode(codec.access_token(user), expected_type=ACCESS)
    assert claims.user_id == user and claims.jti is not None


def test_access_token_carries_its_own_id_and_its_refresh_family() -> None:
    user, family = uuid.uuid4(), uuid.uuid4()
    first = codec.decode(codec.access_token(user, family=family), expected_type=ACCESS)
    second = codec.decode(codec.access_token(user, family=family), expected_type=ACCESS)
    assert first.family == second.family == family
    assert first.jti != second.jti


def test_an_access_token_without_jti_and_family_is_rejected() -> None:
    import jwt

    token = jwt.encode(
        {"sub": str(uuid.uuid4()), "typ": "access", "iss": "sage", "iat": 1, "exp": 9999999999},
        "unit-test-secret-of-sufficient-length-123",
        algorithm="HS256",
    )
    with pytest.raises(Unauthorized):
        codec.decode(token, expected_type=ACCESS)


def test_refresh_token_carries_its_id_and_family() -> None:
    user, jti, family = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    claims = codec.decode(codec.refresh_token(user, jti, family), expected_type=REFRESH)
    assert (claims.user_id, claims.jti, claims.family) == (user, jti, family)


def test_token_with_a_non_uuid_subject_is_rejected() -> None:
    import jwt

    token = jwt.encode(
        {"sub": "admin", "typ": "access", "iss": "sage", "iat": 1, "exp": 9999999999},
        "unit-test-secret-of-sufficient-length-123",
        algorithm="HS256",
    )
    with pytest.raises(Unauthorized):
        codec.decode(token, expected_type=ACCESS)
