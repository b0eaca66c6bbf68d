"""Absolute and relative values of an ``update`` task: ``1500``, ``"+10%"``, ``"-50"``, with ``min``/``max``.

Why a module of its own: the same value text comes from a job file's ``set`` mapping and from CSV cells, is
checked before any call (a wrong value is exit 2 with file:line, not a failed write) and is turned into the
**absolute** amount the write sends once the current value has been read. The journal records that absolute
target (the write's params), so a ``+10%`` resumed after a kill is the same ``+10%``, never ``+21%``.

Grammar (numeric fields are Graph's integer amounts: budgets and bids in the account currency's minor unit,
S003 §Ad Account Adsets ``daily_budget`` / ``bid_amount``):

=============  ================================================================================
``1500``       absolute (a number, or text of digits): the new value
``"+10%"``     relative: current × 1.10, rounded half up to a whole amount
``"-12.5%"``   relative: current × 0.875
``"+200"``     relative: current + 200
``"-50"``      relative: current − 50 (a text starting with ``+`` or ``-`` is always relative)
=============  ================================================================================

A clamp (``min`` / ``max``) bounds the computed value, so ``"+10%"`` with ``max: 50000`` never passes
50,000. Pure: no I/O, table-tested in ``tests/operations/test_ops_update.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

__all__ = ["Clamp", "ValueSpec", "parse_value"]

_RELATIVE = re.compile(r"^([+-])\s*(\d+(?:\.\d+)?)\s*(%?)$")
_ABSOLUTE = re.compile(r"^\d+$")
MAX_AMOUNT = 10**15  # far above any budget; keeps arithmetic on hostile input bounded


@dataclass(frozen=True)
class Clamp:
    """Bounds of a computed numeric value (either may be ``None``)."""

    min: int | None = None
    max: int | None = None

    def apply(self, value: int) -> int:
        if self.min is not None and value < self.min:
            value = self.min
        if self.max is not None and value > self.max:
            value = self.max
        return value


@dataclass(frozen=True)
class ValueSpec:
    """One requested value: absolute (``relative is None``) or a change of the current numeric value."""

    raw: Any
    absolute: Any = None
    relative: str | None = None  # "+", "-"
    amount: Decimal = Decimal(0)
    percent: bool = False

    @property
    def is_relative(self) -> bool:
        return self.relative is not None

    def target(self, current: Any, clamp: Clamp | None = None) -> int:
        """The absolute value to send, from the value read (``current``); raises ``ValueError`` when a
        relative change has no whole amount to start from (nothing, ``"1e30"``, ``"1000.5"``, 40 digits: the
        read is Graph's answer, so hostile text is a per-object refusal, never an arithmetic error) or its
        result is larger than :data:`MAX_AMOUNT`."""
        if not self.is_relative:
            value = int(self.absolute)
        else:
            base = _number(current)
            if base is None:
                raise ValueError(f"no current numeric value to change by {self.raw!r} (read {current!r})")
            if base != base.to_integral_value() or not 0 <= base <= MAX_AMOUNT:
                raise ValueError(
                    f"the current value {_shown(current)} is not a whole amount from 0 to {MAX_AMOUNT:,}: "
                    f"not changed by {self.raw!r}"
                )
            delta = base * self.amount / 100 if self.percent else self.amount
            result = base + delta if self.relative == "+" else base - delta
            if result > MAX_AMOUNT:  # also keeps quantize within the context's 28 digits
                raise ValueError(f"{_shown(current)} changed by {self.raw!r} is larger than {MAX_AMOUNT:,}")
            value = int(result.quantize(Decimal(1), rounding=ROUND_HALF_UP))
        return clamp.apply(value) if clamp is not None else value


def parse_value(raw: Any, *, numeric: bool) -> ValueSpec | str:
    """``raw`` as a :class:`ValueSpec`, or why it is not a valid value (a message for an :class:`Issue`).

    ``numeric`` fields take whole amounts or relative changes; other fields take their value as given (a
    relative-looking text there is refused, so ``name: "+10%"`` is never sent by mistake).
    """
    if isinstance(raw, bool):
        return ValueSpec(raw, absolute=raw) if not numeric else "must be a whole amount, not true/false"
    if isinstance(raw, str):
        text = raw.strip()
        match = _RELATIVE.match(text)
        if match is not None:
            if not numeric:
                return f"a relative value ({raw!r}) needs a numeric field (budgets, bids, caps)"
            try:
                amount = Decimal(match.group(2))
            except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
                return f"not a number: {raw!r}"
            if amount > MAX_AMOUNT:
                return f"the change {raw!r} is larger than {MAX_AMOUNT:,}"
            if match.group(3) and match.group(1) == "-" and amount > 100:
                return f"{raw!r} would make the value negative"
            return ValueSpec(raw, relative=match.group(1), amount=amount, percent=bool(match.group(3)))
        if numeric:
            if not _ABSOLUTE.match(text):
                return f"must be a whole amount (e.g. 1500) or a relative change (+10%, -50), got {raw!r}"
            return _absolute(raw, int(text))
        return ValueSpec(raw, absolute=raw)
    if numeric:
        if isinstance(raw, int):
            return _absolute(raw, raw)
        if isinstance(raw, float) and raw.is_integer():
            return _absolute(raw, int(raw))
        return f"must be a whole amount (e.g. 1500) or a relative change (+10%, -50), got {raw!r}"
    return ValueSpec(raw, absolute=raw)


def _absolute(raw: Any, value: int) -> ValueSpec | str:
    if value < 0:
        return 'must not be negative (write a relative change as text, e.g. "-50")'
    if value > MAX_AMOUNT:
        return f"must be at most {MAX_AMOUNT:,}"
    return ValueSpec(raw, absolute=value)


def _number(value: Any) -> Decimal | None:
    """Graph answers amounts as text (``"1000"``); ``None`` when the object has no such value."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _shown(value: Any) -> str:
    """A read value in a reason, cut short (it is Graph's answer: any length)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"
