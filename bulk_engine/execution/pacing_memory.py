"""The governor's state in the journal: parks and last readings written as :class:`PacingRecord` rows in
wall-clock time, read back by the next run or another worker of the same account (issue 19).

A park read from the journal is *adopted*: it is never written back (the journal keeps it until it runs out or
its writer lifts it), so a worker's park ends when its writer's ends. A reading restored from the journal is
others' usage for the new run: none of the calls it counts are the new run's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from bulk_engine.persistence.journal import PacingRecord

from .pacing_window import APP, METRICS, ParkState, ScopeKey, Window, scope_key, scope_name

__all__ = ["adopt_parks", "export_records", "restore_readings"]

_PARK_SLACK_S = 1.0  # a journal's park this much longer than ours replaces it (not every rewrite of one)


def export_records(
    pairs: Mapping[ScopeKey, Window],
    app: Window | None,
    parks: Mapping[ScopeKey, ParkState],
    lifted: set[ScopeKey],
    now: float,
    wall: float,
    window_s: float,
) -> list[PacingRecord]:
    """Every scope's park and last reading, in wall-clock time, for the journal (``now``: the engine's
    clock, ``wall``: the same instant in wall time; ``lifted``: parks lifted here, cleared in the journal)."""
    # only what this governor knows: a park read from the journal is not written back (the journal keeps
    # it until it runs out or its writer lifts it), a window without a reading says nothing
    own = {k for k, p in parks.items() if p.until > now and not p.adopted}
    read = {k for k, w in pairs.items() if w.reading_at is not None}
    keys = own | read | lifted
    if app is not None and app.reading_at is not None:
        keys.add(APP)
    records: list[PacingRecord] = []
    for key in sorted(keys):
        park = parks.get(key) if key in own else None
        parked = park is not None
        window = app if key == APP else pairs.get(key)
        state: dict[str, Any] = {}
        if window is not None and window.reading_at is not None:
            state = {
                "pct": dict(window.pct),
                "bound": dict(window.bound),
                "floor": window.floor,
                "reading_at": wall - (now - window.reading_at),
                "shared_until": (
                    wall + min(window.shared_until - now, 2 * window_s) if window.shared_until > now else 0.0
                ),
                "reset_at": wall + (window.reset_at - now) if window.reset_at is not None else 0.0,
                # our calls in the window become "others" for whoever reads this record
            }
        records.append(
            PacingRecord(
                scope=scope_name(key),
                parked_until=wall + (park.until - now) if parked and park else 0.0,
                reason=park.reason if parked and park else "",
                usage_pct=window.last_pct if window is not None else (park.usage_pct if park else None),
                state=state,
                updated_at=wall,
                lifted=key in lifted and not parked,
            )
        )
    return records


def restore_readings(
    records: Iterable[PacingRecord],
    window_of: Callable[[ScopeKey], Window],
    now: float,
    wall: float,
    window_s: float,
) -> list[Window]:
    """Readings younger than a window into the windows that have none yet (a process's own readings are
    fresher), as others' usage: none of their calls is ours. Returns the windows restored, to be granted."""
    restored: list[Window] = []
    for record in records:
        key = scope_key(record.scope)
        if key is None:
            continue
        state = record.state
        reading_at = _number(state.get("reading_at"))
        if not state or reading_at is None or wall - reading_at > window_s or key[0] == "account":
            continue
        window = window_of(key)
        if window.reading_at is not None:
            continue  # this process already has fresher knowledge
        window.pct = {m: v for m in METRICS if (v := _number(_get(state, "pct", m))) is not None}
        window.bound = {m: v for m in METRICS if (v := _number(_get(state, "bound", m))) is not None}
        window.floor = _number(state.get("floor"))
        window.reading_at = now - (wall - reading_at)
        window.acked_at_reading = 0.0
        window.last_pct = record.usage_pct
        shared = _number(state.get("shared_until")) or 0.0
        if shared > wall:
            window.shared_until = now + shared - wall
        reset = _number(state.get("reset_at")) or 0.0
        if reset > wall:
            window.reset_at = now + reset - wall
        window.prev_others = None  # judged afresh from this run's readings
        restored.append(window)
    return restored


def adopt_parks(
    parks: dict[ScopeKey, ParkState],
    records: Iterable[PacingRecord],
    now: float,
    wall: float,
    *,
    running: bool,
) -> list[ScopeKey]:
    """Take the journal's parks into ``parks``: an earlier run's, or (``running``) another worker's on an
    account we share. One running longer than ours (by more than ``_PARK_SLACK_S``) replaces ours; one
    adopted before follows the journal (lengthened, shortened, lifted or run out there: here too). Returns
    the scopes whose park changed."""
    parked: dict[ScopeKey, PacingRecord] = {}
    for record in records:
        key = scope_key(record.scope)
        if key is not None and record.parked_until > wall:
            parked[key] = record
    changed: list[ScopeKey] = []
    for key, record in parked.items():
        ours = parks.get(key)
        until = now + record.parked_until - wall
        if ours is not None and ours.until > now:
            longer = until > ours.until + _PARK_SLACK_S
            if not (longer or (ours.adopted and abs(until - ours.until) > _PARK_SLACK_S)):
                continue
        where = "from the journal: another worker's" if running else "restored from the journal"
        parks[key] = ParkState(
            until, f"{record.reason or 'parked'} ({where})", record.usage_pct, adopted=True
        )
        changed.append(key)
    for key, park in list(parks.items()):
        if park.adopted and park.until > now and key not in parked:
            del parks[key]  # lifted (or rewritten unparked) by its writer
            changed.append(key)
    return changed


def _get(state: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(state, dict):
            return None
        state = state.get(part)
    return state


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)
