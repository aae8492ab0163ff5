"""Exact arithmetic for the calculator tool, bounded before it computes.

The expression comes from a model, which may have it from a user: every step is checked
for size *before* Python computes it, so no expression can hold the event loop (a nested
power such as `((10**1000)**1000)**10` is refused in microseconds instead of computed for
minutes).
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction

from tailwinds.engine.context import ToolError

MAX_EXPRESSION = 2_000  # characters
MAX_DIGITS = 4_000  # decimal digits of a numerator or a denominator, any step
# Python refuses str() of an int over 4,300 digits (sys.int_info.default_max_str_digits):
# a result must stay below that to be shown at all.
_MAX_BITS = math.ceil(MAX_DIGITS * math.log2(10))
# a step may grow past the result's bound (10**5000 / 10**4000 is fine) but not without end
_MAX_STEP_BITS = 4 * _MAX_BITS
# steps of big integers cost about the square of their bits (a gcd per Fraction step):
# the sum over an expression is bounded too, to some 20 ms of CPU on this project's
# 2-core machine (a 2,000-character expression of 74 large steps took 145 ms before)
WORK_BUDGET = 25_000_000_000

_BINARY: dict[type[ast.operator], Callable[[Fraction, Fraction], Fraction]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_UNARY: dict[type[ast.unaryop], Callable[[Fraction], Fraction]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
TOO_LARGE = f"the result is too large (over {MAX_DIGITS} digits)"


def _bits(number: Fraction) -> int:
    return number.numerator.bit_length() + number.denominator.bit_length()


def _literal(number: int | float) -> Fraction:
    if isinstance(number, float):
        if not math.isfinite(number):
            raise ToolError(TOO_LARGE)
        return Fraction(repr(number))
    if number.bit_length() > _MAX_STEP_BITS:
        raise ToolError(TOO_LARGE)
    return Fraction(number)


class _Work:
    """What an expression's steps have cost so far, in squared bits."""

    def __init__(self) -> None:
        self.spent = 0

    def spend(self, bits: float) -> None:
        self.spent += int(bits) ** 2
        if self.spent > WORK_BUDGET:
            raise ToolError("the expression is too much work: fewer or smaller steps")


def _binary(op: ast.operator, left: Fraction, right: Fraction, work: _Work) -> Fraction:
    if isinstance(op, ast.Div | ast.FloorDiv | ast.Mod) and right == 0:
        raise ToolError("division by zero")
    # a sum, product or quotient of fractions has at most the bits of both, plus a carry
    both = _bits(left) + _bits(right)
    if both + 1 > _MAX_STEP_BITS:
        raise ToolError(TOO_LARGE)
    work.spend(both)
    return Fraction(_BINARY[type(op)](left, right))


def _power(base: Fraction, exponent: Fraction, work: _Work) -> Fraction:
    if exponent.denominator != 1:
        raise ToolError("exponents must be whole numbers")
    power = int(exponent)
    if base == 0 and power < 0:
        raise ToolError("division by zero")
    # 0, 1 and -1 stay small whatever the power (whose squarings would still cost time)
    if base in (0, 1):
        return base if power else Fraction(1)
    if base == -1:
        return Fraction(-1 if power % 2 else 1)
    # (n/d) ** k has k * log2(n * d) bits, to within k; the power is compared alone
    # first, since a float of it could overflow
    size = math.log2(abs(base.numerator)) + math.log2(base.denominator)
    if abs(power) > _MAX_STEP_BITS or size * abs(power) > _MAX_STEP_BITS:
        raise ToolError(TOO_LARGE)
    work.spend(size * abs(power))
    return base**power


def calculate(expression: str) -> Fraction:
    """The exact value of an arithmetic expression: numbers, + - * / // % and ** (or ^).

    Parsed into a tree and walked (no `eval`); every step is a `Fraction`, so 0.1 + 0.2 is
    3/10. Raises ToolError naming what is wrong: a syntax error, a name or call, division
    by zero, an exponent that is not a whole number, an expression over MAX_EXPRESSION
    characters, a step whose result would be too large (checked before it is computed), or
    steps that would cost more than WORK_BUDGET together.
    """
    expression = expression.replace("^", "**")
    if len(expression) > MAX_EXPRESSION:
        raise ToolError(f"the expression is longer than {MAX_EXPRESSION} characters")
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise ToolError(f"not an arithmetic expression: {exc.msg}") from exc
    except ValueError as exc:  # a lone surrogate cannot be encoded for the parser
        raise ToolError("not an arithmetic expression: it holds a lone surrogate") from exc
    except (RecursionError, MemoryError) as exc:
        raise ToolError("the expression is nested too deeply") from exc

    work = _Work()

    def value(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            if isinstance(node.value, bool):
                raise ToolError("only numbers and + - * / // % ** are allowed, not True/False")
            return _literal(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _binary(node.op, value(node.left), value(node.right), work)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            return _power(value(node.left), value(node.right), work)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](value(node.operand))
        raise ToolError(f"only numbers and + - * / // % ** are allowed, not {ast.dump(node)[:40]}")

    try:
        result = value(tree.body)
    except RecursionError as exc:
        raise ToolError("the expression is nested too deeply") from exc
    if max(result.numerator.bit_length(), result.denominator.bit_length()) > _MAX_BITS:
        raise ToolError(TOO_LARGE)
    return result


def show(number: Fraction) -> str:
    """A whole number as itself; a fraction as `n/d (≈ decimal)`, 12 significant digits
    (through Decimal: a float overflows past 1e308)."""
    if number.denominator == 1:
        return str(number.numerator)
    decimal = Decimal(number.numerator) / Decimal(number.denominator)
    return f"{number.numerator}/{number.denominator} (≈ {decimal:.12g})"
