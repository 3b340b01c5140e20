"""Web Push subscriptions of the current user, and the VAPID public key browsers subscribe with."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from sage.api.deps import CurrentUser, PushSubscriptionsDep, ServicesDep
from sage.api.openapi import error_responses
from sage.api.schemas import RequestModel
from sage.errors import NotFound

router = APIRouter(prefix="/push-subscriptions", tags=["notifications"])

B64URL = r"^[A-Za-z0-9_-]+={0,2}$"


class SubscriptionKeys(BaseModel):
    p256dh: str = Field(min_length=80, max_length=200, pattern=B64URL)  # 65-byte P-256 point
    auth: str = Field(min_length=16, max_length=100, pattern=B64URL)  # 16-byte secret


class SubscriptionIn(RequestModel):
    """`PushSubscription.toJSON()` as the browser gives it."""

    model_config = ConfigDict(populate_by_name=True)
    endpoint: HttpUrl
    expiration_time: int | None = Field(default=None, ge=0, le=2**63 - 1, alias="expirationTime")
    keys: SubscriptionKeys


class PublicKey(BaseModel):
    public_key: str


@router.get("/vapid-public-key", response_model=PublicKey)
async def vapid_public_key(services: ServicesDep) -> PublicKey:
    """The `applicationServerKey` for `pushManager.subscribe` (base64url)."""
    if services.vapid_public_key is None:
        raise NotFound("Web Push is not enabled on this server")
    return PublicKey(public_key=services.vapid_public_key)


@router.post("", status_code=status.HTTP_201_CREATED)
async def subscribe(body: SubscriptionIn, user: CurrentUser, subscriptions: PushSubscriptionsDep) -> dict[str, str]:
    await subscriptions.add(user.id, endpoint=str(body.endpoint), p256dh=body.keys.p256dh, auth=body.keys.auth)
    return {"status": "subscribed"}


@router.delete("", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(404))
async def unsubscribe(
    endpoint: Annotated[str, Query(min_length=8, max_length=2048, pattern=r"^[!-~]+$")],
    user: CurrentUser,
    subscriptions: PushSubscriptionsDep,
) -> None:
    """Unsubscribe the browser whose `endpoint` is given."""
    await subscriptions.remove(user.id, endpoint)
