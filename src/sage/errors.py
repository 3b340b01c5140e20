"""Domain errors. Domain code raises these; the API layer maps them to JSON responses
({"error": {"code", "message", "details"}}) without the domain importing FastAPI."""

from __future__ import annotations

from typing import Any


class SageError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: Any = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers or {}


class NotFound(SageError):
    status = 404
    code = "not_found"


class InvalidInput(SageError):
    """Input the schema could not express a limit for (e.g. too many items in a list parameter)."""

    status = 422
    code = "validation_error"


class Conflict(SageError):
    status = 409
    code = "conflict"


class Unauthorized(SageError):
    status = 401
    code = "unauthorized"

    def __init__(self, message: str = "Not authenticated", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.headers.setdefault("WWW-Authenticate", "Bearer")


class RateLimited(SageError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float, details: Any = None) -> None:
        seconds = max(1, int(retry_after + 0.999))
        super().__init__(message, details=details, headers={"Retry-After": str(seconds)})
        self.retry_after = seconds


class Unavailable(SageError):
    status = 503
    code = "unavailable"

    def __init__(self, message: str, *, retry_after: float | None = None, details: Any = None) -> None:
        headers = {"Retry-After": str(max(1, int(retry_after + 0.999)))} if retry_after is not None else None
        super().__init__(message, details=details, headers=headers)
