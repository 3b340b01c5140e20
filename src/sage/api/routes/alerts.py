"""Market price alerts of the current user."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Literal

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field, field_validator

from sage.api.deps import CurrentUser, PriceAlertsDep
from sage.api.schemas import SYMBOL_PATTERN, PositiveDecimal, RequestModel

router = APIRouter(prefix="/alerts", tags=["alerts"])


class AlertIn(RequestModel):
    symbol: str = Field(pattern=SYMBOL_PATTERN, examples=["BTC/USDT"])
    condition: Literal["above", "below"]
    threshold: PositiveDecimal

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, value: str) -> str:
        from sage.market.symbols import parse_symbol

        return parse_symbol(value)


class AlertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    symbol: str
    condition: str
    threshold: Decimal
    created_at: datetime
    triggered_at: datetime | None
    triggered_price: Decimal | None


@router.post("", status_code=status.HTTP_201_CREATED, response_model=AlertOut)
async def create_alert(body: AlertIn, user: CurrentUser, alerts: PriceAlertsDep) -> AlertOut:
    alert = await alerts.create(user_id=user.id, symbol=body.symbol, condition=body.condition, threshold=body.threshold)
    return AlertOut.model_validate(alert)


@router.get("", response_model=list[AlertOut])
async def list_alerts(user: CurrentUser, alerts: PriceAlertsDep) -> list[AlertOut]:
    return [AlertOut.model_validate(a) for a in await alerts.list_for(user_id=user.id)]


@router.delete("/{alert_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_alert(alert_id: uuid.UUID, user: CurrentUser, alerts: PriceAlertsDep) -> None:
    await alerts.delete(user_id=user.id, alert_id=alert_id)
