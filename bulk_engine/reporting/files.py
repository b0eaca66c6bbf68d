"""How every report file is written: atomically, and readable by its owner only.

Why one place: a report lists what a job did to an ad account (ids, names, Graph's error texts), so all of
them are created ``0600`` (``mkstemp``) like the journal; and a report is either the previous one or the
complete new one, never half written, because each is written beside its path and renamed over it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from types import TracebackType
from typing import IO

__all__ = ["AtomicFile"]


class AtomicFile:
    """A text file written beside ``path`` and renamed over it by ``finish(True)`` (removed otherwise).

    ``with AtomicFile(path) as out: out.write(...)`` — or, for writers that keep it open across calls,
    ``file = AtomicFile(path)`` … ``file.out.write(...)`` … ``file.finish(ok)``.
    """

    def __init__(self, path: str | Path, *, newline: str | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        self._tmp = Path(tmp)
        self.out: IO[str] = os.fdopen(fd, "w", encoding="utf-8", newline=newline)

    def finish(self, ok: bool) -> None:
        """Close; rename over ``path`` when ``ok``; never leave the temporary file behind."""
        try:
            self.out.close()
            if ok:
                os.replace(self._tmp, self.path)
        finally:
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> IO[str]:
        return self.out

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.finish(kind is None)
