"""`calculate`: exact decimal arithmetic for figures the answer derives ("half my BTC is worth ...").

The expression is parsed with `ast` and walked node by node; only numbers, + - * / // %,
** with a small integer exponent, parentheses, unary +/- and min/max/abs/round are
allowed, so nothing is ever executed. Decimal with 34 significant digits: 0.1 + 0.2 is
0.3, and results are as exact as the inputs. Sizes are bounded (expression length,
node count, exponent, magnitude) so a model cannot make Sage compute for long.
"""

from __future__ import annotations

import ast
import decimal
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from sage.chat.tools.base import Tool, ToolCaller, ToolError, ToolOutput

MAX_LENGTH = 500
MAX_NODES = 200
MAX_EXPONENT = 64
MAX_MAGNITUDE = Decimal("1e40")
PRECISION = 34

_BINARY: dict[type[ast.operator], Callable[[Decimal, Decimal], Decimal]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
}


def _round(value: Decimal, places: Decimal | None = None) -> Decimal:
    digits = 0 if places is None else int(places)
    if places is not None and (places != digits or not 0 <= digits <= 18):
        raise ToolError("round() takes a whole number of places between 0 and 18")
    return value.quantize(Decimal(1).scaleb(-digits), rounding=decimal.ROUND_HALF_EVEN)


_FUNCTIONS: dict[str, Callable[..., Decimal]] = {
    "min": lambda *a: min(a),
    "max": lambda *a: max(a),
    "abs": lambda a: abs(a),
    "round": _round,
}
_ARITY = {"min": (1, 20), "max": (1, 20), "abs": (1, 1), "round": (1, 2)}


def evaluate(expression: str) -> Decimal:
    """The exact value of `expression`; ToolError naming what is wrong otherwise."""
    text = expression.strip()
    if not text:
        raise ToolError("The expression is empty")
    if len(text) > MAX_LENGTH:
        raise ToolError(f"The expression is longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise ToolError(f"Cannot read {expression!r} as arithmetic") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise ToolError(f"The expression has more than {MAX_NODES} parts")
    with decimal.localcontext() as ctx:
        ctx.prec = PRECISION
        ctx.traps[decimal.DivisionByZero] = True
        ctx.traps[decimal.InvalidOperation] = True
        try:
            result = _Evaluator(text).eval(tree.body)
        except (decimal.DivisionByZero, ZeroDivisionError):
            raise ToolError("Division by zero") from None
        except decimal.InvalidOperation:
            raise ToolError("The expression has no defined value") from None
        if not result.is_finite() or abs(result) > MAX_MAGNITUDE:
            raise ToolError("The result is out of range")
        return result.normalize()


class _Evaluator:
    def __init__(self, source: str) -> None:
        self.source = source

    def eval(self, node: ast.AST) -> Decimal:
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            # numbers are read from their source text, so "97250.123456789012345" stays exact
            literal = ast.get_source_segment(self.source, node) or str(node.value)
            return Decimal(literal)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            value = self.eval(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp):
            left, right = self.eval(node.left), self.eval(node.right)
            if isinstance(node.op, ast.Pow):
                if right != right.to_integral_value() or abs(right) > MAX_EXPONENT:
                    raise ToolError(f"Exponents must be whole numbers between -{MAX_EXPONENT} and {MAX_EXPONENT}")
                if abs(left) > MAX_MAGNITUDE:
                    raise ToolError("The result is out of range")
                return _bounded(left ** int(right))
            operation = _BINARY.get(type(node.op))
            if operation is None:
                raise ToolError(f"Operator {type(node.op).__name__} is not allowed")
            return _bounded(operation(left, right))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            name = node.func.id
            function = _FUNCTIONS.get(name)
            if function is None:
                raise ToolError(f"Function {name!r} is not allowed (only {', '.join(_FUNCTIONS)})")
            low, high = _ARITY[name]
            if not low <= len(node.args) <= high:
                raise ToolError(f"{name}() takes {low}..{high} arguments")
            return function(*(self.eval(arg) for arg in node.args))
        raise ToolError(f"{ast.unparse(node)!r} is not allowed: use numbers, + - * / ** ( ) and min/max/abs/round")


def _bounded(value: Decimal) -> Decimal:
    if value.is_finite() and abs(value) > MAX_MAGNITUDE:
        raise ToolError("The result is out of range")
    return value


class CalculateArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expression: str = Field(
        min_length=1,
        max_length=MAX_LENGTH,
        description="Arithmetic on numbers only, e.g. '0.5 * 1.25 * 97250.50' or 'round((3456.78 - 3300) / 3300 * 100, 2)'",
    )


async def _calculate(args: CalculateArgs, caller: ToolCaller) -> ToolOutput:
    result = evaluate(args.expression)
    shown = f"{result:f}"
    return ToolOutput(
        data={"expression": args.expression, "result": shown},
        summary=f"{args.expression} = {shown}",
        ground=lambda facts: facts.add_calculation(args.expression, result),
    )


def calculate_tool() -> Tool[Any]:
    return Tool(
        name="calculate",
        description=(
            "Exact decimal arithmetic. Use it for every figure you derive from other figures (a share of a "
            "position, a difference, a percentage change, a sum) instead of computing it yourself; the result is "
            "exact. Allowed: numbers, + - * / // % ** (whole exponents up to 64), parentheses, min, max, abs, round."
        ),
        args=CalculateArgs,
        handler=_calculate,
        timeout=1.0,  # pure arithmetic on bounded input: anything slower is a bug, not a slow source
    )
