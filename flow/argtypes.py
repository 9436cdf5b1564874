"""Argument types of the qflow command line for counts and rates: argparse refuses a value
outside their domain with a message naming it (`qflow run: error: argument --limit: ...`)
before any command starts."""

from __future__ import annotations

import argparse
import math


def whole_number(text: str, minimum: int) -> int:
    """`text` as an int of at least `minimum`; argparse's error otherwise."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{value} must be a whole number of {minimum} or more")
    return value


def positive_int(text: str) -> int:
    """A whole number >= 1 (a sample count, a cycle target)."""
    return whole_number(text, 1)


def non_negative_int(text: str) -> int:
    """A whole number >= 0 (a seed)."""
    return whole_number(text, 0)


def positive_float(text: str) -> float:
    """A finite number > 0 (a frame rate, a clock): nan, inf, 0 and negatives are refused."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be a finite number greater than 0")
    return value
