import time
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


# -- verified access tokens are remembered -------------------------------------------------------
def test_a_remembered_access_token_still_expires() -> None:
    now = [1_000_000.0]
    timed = TokenCodec(
        "unit-test-secret-of-sufficient-length-123", access_ttl=60, refresh_ttl=3600, clock=lambda: now[0]
    )
    token = timed.access_token(uuid.uuid4())  # issued at the real time: PyJWT accepts it
    now[0] = time.time()
    first = timed.decode(token, expected_type=ACCESS)
    assert timed.decode(token, expected_type=ACCESS) == first  # the second decode is the remembered one
    now[0] = first.expires_at + timed.leeway  # PyJWT's rule: expired once exp <= now - leeway
    with pytest.raises(Unauthorized, match="expired"):
        timed.decode(token, expected_type=ACCESS)


def test_a_remembered_access_token_is_still_not_a_refresh_token() -> None:
    token = codec.access_token(uuid.uuid4())
    codec.decode(token, expected_type=ACCESS)
    with pytest.raises(Unauthorized, match="type"):
        codec.decode(token, expected_type=REFRESH)


def test_a_token_one_byte_away_from_a_remembered_one_is_verified_and_refused() -> None:
    token = codec.access_token(uuid.uuid4())
    codec.decode(token, expected_type=ACCESS)
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(Unauthorized):
        codec.decode(tampered, expected_type=ACCESS)


def test_the_memory_of_verified_tokens_is_bounded_oldest_out_first() -> None:
    small = TokenCodec("unit-test-secret-of-sufficient-length-123", access_ttl=60, refresh_ttl=3600, verified_limit=2)
    tokens = [small.access_token(uuid.uuid4()) for _ in range(3)]
    for token in tokens:
        small.decode(token, expected_type=ACCESS)
    assert list(small._verified) == tokens[1:]
    assert small.decode(tokens[0], expected_type=ACCESS).user_id  # forgotten, verified again
    assert list(small._verified) == [tokens[2], tokens[0]]


def test_refresh_tokens_are_not_remembered() -> None:
    fresh = TokenCodec("unit-test-secret-of-sufficient-length-123", access_ttl=60, refresh_ttl=3600)
    fresh.decode(fresh.refresh_token(uuid.uuid4(), uuid.uuid4(), uuid.uuid4()), expected_type=REFRESH)
    assert fresh._verified == {}
