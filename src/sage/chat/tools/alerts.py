"""Alert tools: list, create and delete the asking user's alerts (market and portfolio).

They go through the same service as the REST API (`PriceAlertService`), so its limits
(at most 50 alerts per user), its validation (one `AlertSpec.checked()`) and ownership
checks (a portfolio must be the asking user's) hold; the arguments carry the REST API's
constraints (symbol through the one parser, a kind or the older `above`/`below`, a positive
threshold with at most 18 decimals). The user id comes from the caller, never from the model.
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
    def portfolio_id(self) -> uuid.UUID | None: ...
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
    kind: Kind | None = Field(
        default=None,
        description="price_above, price_below (symbol), portfolio_value_above, portfolio_value_below"
        " (portfolio_id; threshold = total value in the portfolio's base currency) or portfolio_return_below"
        " (portfolio_id; threshold = percent below the portfolio's peak). Or give `condition` for a price alert.",
    )
    symbol: str | None = Field(default=None, min_length=2, max_length=32, description="e.g. 'ETH/USDT' or 'ETH'")
    condition: Literal["above", "below"] | None = Field(
        default=None, description="Price alerts: fire when the price rises above / drops below"
    )
    portfolio_id: uuid.UUID | None = Field(default=None, description="Portfolio alerts: the portfolio's id")
    threshold: Decimal = Field(
        gt=0, max_digits=38, decimal_places=18, description="Price, portfolio value, or percentage (see kind)"
    )

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return parse_symbol(value)
        except SymbolError as exc:
            raise ValueError(str(exc)) from None

    def spec(self) -> AlertSpec:
        kind = self.kind
        if kind is None and self.condition is not None:
            kind = Kind.PRICE_ABOVE if self.condition == "above" else Kind.PRICE_BELOW
        if kind is None:
            raise ToolError("Give `kind` (or `condition` for a price alert)")
        return AlertSpec(kind=kind, symbol=self.symbol, portfolio_id=self.portfolio_id, threshold=self.threshold)


class DeleteAlertArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: uuid.UUID = Field(description="The alert's id from list_alerts")


def _alert(a: AlertRecord) -> dict[str, Any]:
    return {
        "id": str(a.id),
        "symbol": a.symbol,
        "portfolio_id": None if a.portfolio_id is None else str(a.portfolio_id),
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
            Tool("list_alerts", "The asking user's alerts (pending and triggered).", NoArgs, self.list_alerts),
            Tool(
                "create_alert",
                "Create an alert for the asking user: Sage notifies them once when the consolidated price "
                "of `symbol` rises above or drops below `threshold`, or when one of their portfolios' value "
                "crosses `threshold` or falls `threshold` % below its peak. Only when the user asks for an alert.",
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
        spec = args.spec()
        try:
            created = await self.alerts.create(user_id=caller.user_id, spec=spec)
        except SageError as exc:  # refused as the REST API refuses it (unknown symbol or portfolio, limits)
            raise ToolError(_refusal(exc)) from None
        data = _alert(created.alert)
        result: dict[str, Any] = {"created": data}
        if created.already_triggered:
            result["already_triggered"] = True
            result["message"] = created.message
        watched = data["symbol"] or f"portfolio {data['portfolio_id']}"
        return ToolOutput(result, f"alert: {watched} {data['kind']} {data['threshold']}")

    async def delete_alert(self, args: DeleteAlertArgs, caller: ToolCaller) -> ToolOutput:
        try:
            await self.alerts.delete(user_id=caller.user_id, alert_id=args.id)
        except NotFound:
            raise ToolError(f"The user has no alert {args.id}") from None
        return ToolOutput({"deleted": str(args.id)}, f"deleted alert {args.id}")


def _refusal(exc: SageError) -> str:
    """The service's message with each named field's reason (what the REST API's 422 lists)."""
    details = exc.details if isinstance(exc.details, list) else []
    reasons = [f"{d['field']}: {d['message']}" for d in details if isinstance(d, dict) and "field" in d]
    return f"{exc} ({'; '.join(reasons)})" if reasons else str(exc)
