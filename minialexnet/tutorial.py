"""What the tutorial notebooks share: the fast mode and checks that print what they compare.

``MINIALEXNET_FAST=1`` in the environment (CI sets it) makes every notebook
shrink its data and epochs so that it runs top to bottom in seconds; the
numbers it prints are then smaller but every check still holds.
"""

from __future__ import annotations

import os
from typing import Any, TypeVar

from .gradcheck import relative_error

__all__ = ["FAST", "pick", "check_close"]

T = TypeVar("T")

FAST: bool = os.environ.get("MINIALEXNET_FAST", "").strip().lower() not in ("", "0", "false", "no")
"""True when ``MINIALEXNET_FAST`` is set (to anything but 0/false/no)."""


def pick(fast: T, full: T) -> T:
    """``fast`` in fast mode (``MINIALEXNET_FAST=1``), else ``full``: sizes and epochs."""
    return fast if FAST else full


def check_close(name: str, got: Any, want: Any, tol: float = 1e-6) -> float:
    """Print the norm-wise relative error between ``got`` and ``want``; assert it is below ``tol``.

    Returns the error. The message of a failure says which quantity was off and by
    how much, so a reader who changed the code sees where to look.
    """
    err = relative_error(got, want)
    verdict = "ok" if err < tol else "TOO LARGE"
    print(f"{name}: relative error {err:.1e} (tolerance {tol:.0e}) {verdict}")
    assert err < tol, f"{name}: relative error {err:.2e} is above the tolerance {tol:.0e}"
    return err
