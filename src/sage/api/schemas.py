"""Request and response bodies shared across routers."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import email_validator
from pydantic import BaseModel, BeforeValidator, ConfigDict, EmailStr, Field, WithJsonSchema, field_validator

INT64_MAX = 2**63 - 1  # PostgreSQL BIGINT: integer parameters are bounded by it (or less)

# A symbol as the API accepts it: `BTC`, `BTCUSDT`, `BTC/USDT`, `btc_usdt`, `BTC-USDT`, `BTC:USDT`.
# The pattern is enforced where it is documented, so the schema and the server agree exactly
# (sage.market.symbols then normalizes what it admits; it accepts everything the pattern does).
SYMBOL_PART = "[A-Za-z0-9]{1,15}"
SYMBOL = f"{SYMBOL_PART}(?:[/_:-]{SYMBOL_PART})?"
SYMBOL_PATTERN = f"^{SYMBOL}$"

# Decimals in request bodies: a plain decimal string (no sign, exponent or spaces; at most 20
# integer and 18 fractional digits, the NUMERIC(38, 18) columns), or a JSON integer. Floats are
# refused: a binary float has already lost the digits the user typed.
_WHOLE = "(?:0|[1-9][0-9]{0,19})"
_FRACTION = r"(?:\.[0-9]{1,18})?"
NON_NEGATIVE_DECIMAL_PATTERN = f"^{_WHOLE}{_FRACTION}$"
# Strictly positive: a non-zero whole part, or zero and a fraction with a non-zero digit in its 18 places.
POSITIVE_DECIMAL_PATTERN = (
    f"^(?:[1-9][0-9]{{0,19}}{_FRACTION}|0\\.(?:"
    + "|".join(f"0{{{k}}}[1-9][0-9]{{0,{17 - k}}}" for k in range(18))
    + "))$"
)
_MAX_WHOLE = 10**15  # as a JSON integer (a float64 holds it exactly); larger amounts come as strings


def _decimal_input(pattern: str, minimum: int) -> Any:
    compiled = re.compile(pattern)

    def parse(value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError('must be a decimal string such as "0.5"')
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # JSON 2.0 is the integer 2
        if isinstance(value, int):
            if not minimum <= value <= _MAX_WHOLE:
                raise ValueError(f"must be between {minimum} and {_MAX_WHOLE}")
            return Decimal(value)
        if isinstance(value, str) and compiled.fullmatch(value):
            return Decimal(value)
        raise ValueError('must be a decimal string such as "0.5" (at most 20 digits before the point, 18 after)')

    return parse


def _decimal_schema(pattern: str, minimum: int, example: str) -> dict[str, Any]:
    return {
        "anyOf": [
            {"type": "string", "pattern": pattern, "examples": [example]},
            {"type": "integer", "minimum": minimum, "maximum": _MAX_WHOLE},
        ]
    }


PositiveDecimal = Annotated[
    Decimal,
    BeforeValidator(_decimal_input(POSITIVE_DECIMAL_PATTERN, 1)),
    WithJsonSchema(_decimal_schema(POSITIVE_DECIMAL_PATTERN, 1, "0.5")),
]
NonNegativeDecimal = Annotated[
    Decimal,
    BeforeValidator(_decimal_input(NON_NEGATIVE_DECIMAL_PATTERN, 0)),
    WithJsonSchema(_decimal_schema(NON_NEGATIVE_DECIMAL_PATTERN, 0, "60000")),
]


def _reject_nul(value: Any) -> Any:
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("must not contain the NUL character (\\u0000)")
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            _reject_nul(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _reject_nul(key)
            _reject_nul(item)
    return value


# Text without NUL; and text that is not blank (one character that str.strip() keeps). Written
# for the regex dialect pydantic and JSON Schema validators share, where \s is Unicode White_Space
# (str.strip() also removes \x1c-\x1f).
NO_NUL_PATTERN = "^[^\\x00]*$"
NOT_BLANK_PATTERN = "^[^\\x00]*[^\\s\\x00\\x1c-\\x1f][^\\x00]*$"


def _document_no_nul(schema: dict[str, Any]) -> None:
    """State the NUL rule in the JSON schema of each text property that has no pattern of its own."""

    def visit(node: dict[str, Any]) -> None:
        if node.get("type") == "string" and "pattern" not in node and "format" not in node and "enum" not in node:
            node["pattern"] = NO_NUL_PATTERN
        for branch in node.get("anyOf", []):
            visit(branch)
        if isinstance(node.get("items"), dict):
            visit(node["items"])

    for prop in schema.get("properties", {}).values():
        visit(prop)


class RequestModel(BaseModel):
    """Base of every request body: unknown fields are refused, and no text field may hold a NUL
    character (PostgreSQL text cannot store one, so it would fail at the database as a 500).
    The check runs on every field of every subclass, so a new body model needs nothing more;
    tests/api/test_input_bounds.py checks that every route's body model derives from this."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_document_no_nul)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul_characters(cls, value: Any) -> Any:
        return _reject_nul(value)


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" for c in word)


# email-validator refuses addresses at special-use domains (RFC 6761: .test, .localhost, ...);
# the schema says so, so no generated "valid" address is refused.
_SPECIAL_USE_DOMAIN = "[@.](?:" + "|".join(_any_case(d) for d in email_validator.SPECIAL_USE_DOMAIN_NAMES) + ")$"


class RegisterRequest(RequestModel):
    email: EmailStr = Field(json_schema_extra={"not": {"pattern": _SPECIAL_USE_DOMAIN}})
    password: str = Field(min_length=8, max_length=128)
    display_name: str | None = Field(default=None, max_length=100)


class LoginRequest(RequestModel):
    # Any text: an address that cannot exist fails like a wrong password (401), saying nothing more.
    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=128)


class RefreshRequest(RequestModel):
    refresh_token: str = Field(min_length=1, max_length=4096)


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    email: str
    display_name: str | None
    created_at: datetime
