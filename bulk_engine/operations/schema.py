"""Publish the job-file JSON Schema: ``python -m bulk_engine.operations.schema [docs/job-schema.json]``.

The committed ``docs/job-schema.json`` must equal :func:`render_schema` (a test checks it); editors use it for
completion and validation of job files (e.g. ``# yaml-language-server: $schema=…/docs/job-schema.json``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .jobfile import job_schema

__all__ = ["render_schema", "write_schema"]

DEFAULT_PATH = Path("docs") / "job-schema.json"


def render_schema() -> str:
    return json.dumps(job_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_schema(path: str | Path = DEFAULT_PATH) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_schema(), encoding="utf-8")
    return target


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    print(write_schema(args[0] if args else DEFAULT_PATH))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
