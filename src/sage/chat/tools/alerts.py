"""Alert tools: list, create and delete the asking user's price alerts.

They go through the same service as the REST API (`PriceAlertService`), so its limits
(at most 50 alerts per user) and ownership checks hold; the arguments carry the REST
API's constraints (symbol through the one parser, `above`/`below`, a positive threshold
with at most 18 decimals). The user id comes from the caller, never from the model.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sage.alerts.conditions import AlertSpec, Kind
from sage.chat.tools.base import Tool, ToolCaller, ToolError, ToolOutput
from sage.errors import NotFound, SageError
from sage.market.symbols import SymbolError, parse_symbol


class AlertRecord(Protocol):
    @property
    def id(self) -> uuid.UUID: ...
    @property
    def symbol(self) -> str | None: ...
    @property
    def kind(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def threshold(self) -> Decimal: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def triggered_at(self) -> datetime | None: ...


class AlertBook(Protocol):
    async def create(self, *, user_id: uuid.UUID, spec: AlertSpec) -> Any: ...
    async def list_for(self, *, user_id: uuid.UUID) -> Sequence[Any]: ...
    async def delete(self, *, user_id: uuid.UUID, alert_id: uuid.UUID) -> None: ...


class NoArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateAlertArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    symbol: str = Field(min_length=2, max_length=32, description="e.g. 'ETH/USDT' or 'ETH'")
    condition: Literal["above", "below"] = Field(description="Fire when the price rises above / drops below")
    threshold: Decimal = Field(gt=0, max_digits=38, decimal_places=18, description="Price in the quote currency")

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, value: str) -> str:
        try:
            return parse_symbol(value)
        except SymbolError as exc:
            raise ValueError(str(exc)) from None


class DeleteAlertArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: uuid.UUID = Field(description="The alert's id from list_alerts")


def _alert(a: AlertRecord) -> dict[str, Any]:
    return {
        "id": str(a.id),
        "symbol": a.symbol,
        "kind": a.kind,
        "status": a.status,
        "threshold": f"{a.threshold.normalize():f}",
        "created_at": a.created_at.isoformat(),
        "triggered_at": None if a.triggered_at is None else a.triggered_at.isoformat(),
    }


class AlertTools:
    def __init__(self, alerts: AlertBook) -> None:
        self.alerts = alerts

    def tools(self) -> list[Tool[Any]]:
        return [
            Tool("list_alerts", "The asking user's price alerts (pending and triggered).", NoArgs, self.list_alerts),
            Tool(
                "create_alert",
                "Create a price alert for the asking user: Sage notifies them once when the consolidated price "
                "of `symbol` rises above or drops below `threshold`. Only when the user asks for an alert.",
                CreateAlertArgs,
                self.create_alert,
            ),
            Tool(
                "delete_alert",
                "Delete one of the asking user's alerts by its id (from list_alerts). Only when the user asks.",
                DeleteAlertArgs,
                self.delete_alert,
            ),
        ]

    async def list_alerts(self, args: NoArgs, caller: ToolCaller) -> ToolOutput:
        alerts = [_alert(a) for a in await self.alerts.list_for(user_id=caller.user_id)]
        pending = sum(1 for a in alerts if a["triggered_at"] is None)
        return ToolOutput({"alerts": alerts}, f"{len(alerts)} alerts, {pending} pending")

    async def create_alert(self, args: CreateAlertArgs, caller: ToolCaller) -> ToolOutput:
        kind = Kind.PRICE_ABOVE if args.condition == "above" else Kind.PRICE_BELOW
        try:
            created = await self.alerts.create(
                user_id=caller.user_id, spec=AlertSpec(kind=kind, symbol=args.symbol, threshold=args.threshold)
            )
        except SageError as exc:  # refused as the REST API refuses it (unknown symbol, limits)
            raise ToolError(str(exc)) from None
        data = _alert(created.alert)
        result: dict[str, Any] = {"created": data}
        if created.already_triggered:
            result["already_triggered"] = True
            result["message"] = created.message
        return ToolOutput(result, f"alert: {data['symbol']} {data['kind']} {data['threshold']}")

    async def delete_alert(self, args: DeleteAlertArgs, caller: ToolCaller) -> ToolOutput:
        try:
            await self.alerts.delete(user_id=caller.user_id, alert_id=args.id)
        except NotFound:
            raise ToolError(f"The user has no alert {args.id}") from None
        return ToolOutput({"deleted": str(args.id)}, f"deleted alert {args.id}")
