"""Where a task's full report goes: a local path or an object-storage URL (``s3://…``, ``gs://…``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["write_report"]


def write_report(path: str, report: Mapping[str, Any], conn_id: str | None = None) -> str:
    """Write ``report`` as JSON to a local path or an object-storage URL; returns where it went."""
    text = json.dumps(report, indent=2, default=str)
    if "://" in path and not path.startswith("file://"):
        from airflow.sdk import ObjectStoragePath

        target = ObjectStoragePath(path, conn_id=conn_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return str(target)
    local = Path(path.removeprefix("file://"))
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_text(text, encoding="utf-8")
    return str(local)
