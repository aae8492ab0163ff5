"""The calculator's arithmetic: exact, and bounded before it computes (an expression comes
from a model, which may have it from anyone)."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

from tailwinds.engine.context import ToolError
from tailwinds.nodes.arithmetic import MAX_DIGITS, MAX_EXPRESSION, TOO_LARGE, calculate, show


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("0.1 + 0.2", "3/10 (≈ 0.3)"),
        ("2 ^ 100", str(2**100)),
        ("-7 // 2 % 3", "2"),
        ("10 / 4", "5/2 (≈ 2.5)"),
        ("(1/2) ** -3", "8"),
        # 0, 1 and -1 to any power: no squarings for a power of 47,000 bits
        ("1 ^ 3 ^ 30000 + 0 ^ 3 ^ 30000 + (-1) ^ (3 ^ 30000) + (-1) ^ (2 * 3 ^ 5000)", "1"),
        ("(-1) ** -3 + 0 ** 0", "0"),
        ("10 ** 3999", str(10**3999)),
        ("10 ** 5000 / 10 ** 4000", "1" + "0" * 1000),
        ("(10 ** 400 + 1) / 3", f"{10**400 + 1}/3 (≈ 3.33333333333e+399)"),
        ("1 / 10 ** 400", f"1/{10**400} (≈ 1e-400)"),
    ],
)
def test_exact(expression: str, expected: str) -> None:
    assert show(calculate(expression)) == expected


@pytest.mark.parametrize(
    "expression",
    [
        "((10**1000)**1000)**10",  # minutes of CPU if computed, then far too long to print
        "(10**1000)**1000",
        "9 ** 9 ** 9",
        "(2**1000)**1000 - (2**1000)**1000",  # the size of a step counts, not only the result
        "((10**999 * 10**999) * (10**999 * 10**999)) ** 2 * 10**999",
        "(1/3) ** 100000",
        "1.5 ** 10 ** 100",
        "10 ** 4001",
        "1 / 10 ** 4001",
        "2 ** 10 ** 400",  # a power too large to be a float
        "(1/2) ** (10 ** 400)",
        "1e309",  # a float that is infinite
        "-1e400",
    ],
)
def test_too_large_is_refused_before_it_is_computed(expression: str) -> None:
    with pytest.raises(ToolError) as refused:
        calculate(expression)
    assert str(refused.value) == TOO_LARGE


def test_refusals_name_what_is_wrong() -> None:
    cases = {
        "__import__('os')": "only numbers",
        "a + 1": "only numbers",
        "[1]": "only numbers",
        "True + 1": "only numbers",
        "1 +": "not an arithmetic expression",
        "1 + \ud800": "a lone surrogate",
        "0 ^ -1": "division by zero",
        "1^3" * 600: f"longer than {MAX_EXPRESSION}",  # counted with ^ read as **
        "2 ** 0.5": "exponents must be whole numbers",
        "0 ** -1": "division by zero",
        "1 % 0": "division by zero",
        "1" + " + 1" * (MAX_EXPRESSION // 4): f"longer than {MAX_EXPRESSION}",
        "+" * 1_500 + "1": "nested too deeply",
        "(" * 300 + "1" + ")" * 300: "not an arithmetic expression",
    }
    for expression, named in cases.items():
        with pytest.raises(ToolError) as refused:
            calculate(expression)
        assert named in str(refused.value), expression


def test_many_large_steps_are_refused_before_they_add_up() -> None:
    # each step is within bounds; 74 of them took 145 ms of big-integer gcds
    expression = "-".join(["((3/5)**6800%(7/11)**4200)"] * 74)
    assert len(expression) <= MAX_EXPRESSION
    with pytest.raises(ToolError, match="too much work"):
        calculate(expression)
    calculate("-".join(["((3/5)**680%(7/11)**420)"] * 74))  # the same shape, smaller: fine


def test_agrees_with_fractions_on_random_expressions() -> None:
    draw = random.Random(25)
    for _ in range(500):
        terms = [str(draw.randint(-(10**6), 10**6)) for _ in range(draw.randint(1, 6))]
        ops = [draw.choice(["+", "-", "*", "/"]) for _ in terms[1:]]
        expression = terms[0] + "".join(f" {o} ({t})" for o, t in zip(ops, terms[1:], strict=True))
        try:
            expected: Fraction | None = Fraction(eval(expression.replace("/", "*Fraction(1)/")))
        except ZeroDivisionError:
            expected = None
        if expected is None:
            with pytest.raises(ToolError):
                calculate(expression)
        else:
            assert calculate(expression) == expected, expression


def test_every_shown_result_fits_pythons_limit_on_printed_integers() -> None:
    largest = calculate(f"10 ** {MAX_DIGITS - 1} * 9")
    assert len(show(largest)) == MAX_DIGITS
