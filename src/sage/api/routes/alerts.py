"""Market and portfolio alerts of the current user: create, list, edit / pause / resume (PATCH), delete.

Compatible with the first version: `condition: above|below` is still accepted (it means
`kind: price_above|price_below`) and still returned for level alerts.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Literal

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field, field_serializer

from sage.alerts.conditions import (
    DEFAULT_COOLDOWN_SECONDS,
    NOTE_MAX,
    AlertSpec,
    Direction,
    InvalidAlert,
    Kind,
    Repeat,
)
from sage.alerts.service import AlertChanges, Created
from sage.api.deps import CurrentUser, PriceAlertsDep
from sage.api.schemas import SYMBOL_PATTERN, PositiveDecimal, RequestModel
from sage.store.alert_tables import MarketAlert

router = APIRouter(prefix="/alerts", tags=["alerts"])


def plain(value: Decimal | None) -> str | None:
    """A decimal without trailing zeros or exponent: "100000", "0.00001234"."""
    if value is None:
        return None
    text = format(value.normalize(), "f")
    return text


class AlertIn(RequestModel):
    kind: Kind | None = Field(default=None, examples=["price_above"])
    condition: Literal["above", "below"] | None = Field(default=None, description="Deprecated: use kind")
    symbol: str | None = Field(default=None, pattern=SYMBOL_PATTERN, examples=["BTC/USDT"])
    portfolio_id: uuid.UUID | None = Field(
        default=None, description="Portfolio alerts (portfolio_*): one of your portfolios; refused for other kinds"
    )
    threshold: PositiveDecimal = Field(
        description="A price or Fear & Greed level; a percentage for change_pct and portfolio_return_below"
        " (10 = 10 % below the peak); a value in the portfolio's base currency for portfolio_value_*"
    )
    direction: Direction | None = None
    window: Literal["5m", "1h", "4h", "24h"] | None = None
    repeat: Repeat = Repeat.ONCE
    cooldown_seconds: int = DEFAULT_COOLDOWN_SECONDS
    note: str | None = Field(default=None, max_length=NOTE_MAX)

    def spec(self) -> AlertSpec:
        kind = self.kind
        if kind is None and self.condition is not None:
            kind = Kind.PRICE_ABOVE if self.condition == "above" else Kind.PRICE_BELOW
        if kind is None:
            raise InvalidAlert([("kind", f"required, one of {', '.join(k.value for k in Kind)}")])
        return AlertSpec(
            kind=kind,
            threshold=self.threshold,
            symbol=self.symbol,
            portfolio_id=self.portfolio_id,
            direction=self.direction,
            window=self.window,
            repeat=self.repeat,
            cooldown_seconds=self.cooldown_seconds,
            note=self.note,
        )


class AlertPatch(RequestModel):
    threshold: PositiveDecimal | None = None
    repeat: Repeat | None = None
    cooldown_seconds: int | None = None
    note: str | None = Field(default=None, max_length=NOTE_MAX)
    paused: bool | None = Field(default=None, description="true pauses, false resumes")


class AlertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    kind: str
    condition: str | None
    symbol: str | None
    portfolio_id: uuid.UUID | None
    threshold: Decimal
    direction: str | None
    window: str | None
    repeat: str
    cooldown_seconds: int
    note: str | None
    status: str
    fire_count: int
    created_at: datetime
    triggered_at: datetime | None
    triggered_price: Decimal | None

    @field_serializer("threshold", "triggered_price")
    def _plain(self, value: Decimal | None) -> str | None:
        return plain(value)

    @classmethod
    def of(cls, alert: MarketAlert) -> AlertOut:
        condition = alert.kind.removeprefix("price_") if alert.kind in ("price_above", "price_below") else None
        return cls.model_validate(
            {
                **{name: getattr(alert, name) for name in cls.model_fields if hasattr(alert, name)},
                "condition": condition,
                "window": alert.change_window,
            }
        )


class AlertCreated(AlertOut):
    already_triggered: bool = False
    message: str | None = None


def _created(result: Created) -> AlertCreated:
    out = AlertOut.of(result.alert)
    return AlertCreated(
        **out.model_dump(exclude={"threshold", "triggered_price"}),
        threshold=result.alert.threshold,
        triggered_price=result.alert.triggered_price,
        already_triggered=result.already_triggered,
        message=result.message,
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=AlertCreated)
async def create_alert(body: AlertIn, user: CurrentUser, alerts: PriceAlertsDep) -> AlertCreated:
    """Create an alert. When its condition already holds, it does not fire: the response says so
    (`already_triggered: true` and a message) and the alert waits for the next crossing."""
    return _created(await alerts.create(user_id=user.id, spec=body.spec()))


@router.get("", response_model=list[AlertOut])
async def list_alerts(user: CurrentUser, alerts: PriceAlertsDep) -> list[AlertOut]:
    return [AlertOut.of(a) for a in await alerts.list_for(user_id=user.id)]


@router.get("/{alert_id:uuid}", response_model=AlertOut)
async def get_alert(alert_id: uuid.UUID, user: CurrentUser, alerts: PriceAlertsDep) -> AlertOut:
    return AlertOut.of(await alerts.get(user_id=user.id, alert_id=alert_id))


@router.patch("/{alert_id:uuid}", response_model=AlertCreated)
async def update_alert(
    alert_id: uuid.UUID, body: AlertPatch, user: CurrentUser, alerts: PriceAlertsDep
) -> AlertCreated:
    """Edit the level, repeat mode, cooldown or note; `paused: true` pauses, `false` resumes."""
    changes = AlertChanges(
        threshold=body.threshold,
        repeat=body.repeat,
        cooldown_seconds=body.cooldown_seconds,
        note=body.note,
        clear_note="note" in body.model_fields_set and body.note is None,
        paused=body.paused,
    )
    return _created(await alerts.update(user_id=user.id, alert_id=alert_id, changes=changes))


@router.delete("/{alert_id:uuid}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_alert(alert_id: uuid.UUID, user: CurrentUser, alerts: PriceAlertsDep) -> None:
    await alerts.delete(user_id=user.id, alert_id=alert_id)
