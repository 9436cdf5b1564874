"""Argument types of the qflow command line for counts and rates: argparse refuses a value
outside their domain with a message naming it (`qflow run: error: argument --limit: ...`)
before any command starts."""

from __future__ import annotations

import argparse
import math


def positive_int(text: str) -> int:
    """A whole number >= 1 (a sample count, a cycle target)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be a positive whole number (1 or more)")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (a frame rate, a clock): nan, inf, 0 and negatives are refused."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be a finite number greater than 0")
    return value
