"""The run's outcomes on disk: one scrubbed JSON line per outcome, in a temporary file beside the reports.

Why: the reports list every operation, and a million outcomes held in memory cost ~1 GB (they were, in
``RunRecorder.outcomes``) while the engine's stream itself stays flat. The recorder appends each outcome here
as the engine reports it; the reports are then written from this file in passes, one operation at a time.

The lines are scrubbed (the run's :class:`~bulk_engine.scrub.Scrubber`) before they are written, so the file
never holds a secret, and it is created ``0600`` (``mkstemp``) and removed when the run's reports are written
(:meth:`OutcomeSpill.close`). It sits next to the JSON report (else the CSV or HTML report, else the system's
temporary folder): the same disk as the reports, which are about as big.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from bulk_engine.results import Outcome
from bulk_engine.scrub import Scrubber

__all__ = ["OutcomeSpill"]


class OutcomeSpill:
    """An append-only JSON-lines file of outcomes (``Outcome.to_dict()``), read back in passes."""

    def __init__(self, directory: Path | None, scrubber: Scrubber) -> None:
        where = directory if directory is not None else Path(tempfile.gettempdir())
        where.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".bulk-engine-outcomes-", suffix=".jsonl", dir=where)
        self.path = Path(name)
        self._out: IO[str] | None = os.fdopen(fd, "w", encoding="utf-8")
        self._scrubber = scrubber
        self.count = 0

    def __repr__(self) -> str:
        return f"OutcomeSpill({str(self.path)!r}, count={self.count})"

    def append(self, outcome: Outcome) -> None:
        if self._out is None:
            return  # closed: the run's reports are written
        self._out.write(self._scrubber.dumps(outcome.to_dict(), separators=(",", ":")) + "\n")
        self.count += 1

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Every outcome appended so far, in order (a fresh pass each time)."""
        if self._out is None:
            return
        self._out.flush()
        with self.path.open(encoding="utf-8") as lines:
            for line in lines:
                yield json.loads(line)

    def close(self) -> None:
        """Remove the file (idempotent)."""
        if self._out is not None:
            self._out.close()
            self._out = None
        self.path.unlink(missing_ok=True)
