"""The Advantage+ migration in the reports: per campaign (HTML section) and old → new per object (CSV).

Why beside the per-operation reports: after migrating an account, the questions are per campaign — what was
done, is the copy verified, was the source paused, which new ad is which old ad — and the JSON report holds
the answers in each migrate task's ``details.campaigns`` (:class:`~bulk_engine.operations.migrate_record.
MigrationRecord`). :func:`migration_campaigns` and :func:`migration_map_rows` read them back for the HTML
section (``html._migration_section``) and for the map CSV written next to the CSV report
(:func:`migration_csv_path`: ``job.csv`` → ``job.migration.csv``).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from bulk_engine.spreadsheet import safe_cell

from .files import AtomicFile

__all__ = [
    "MAP_COLUMNS",
    "migration_campaigns",
    "migration_csv_path",
    "migration_map_rows",
    "write_migration_csv",
]

MAP_COLUMNS = (
    "task",
    "source_campaign_id",
    "campaign_name",
    "action",
    "state",
    "verified",
    "switch",
    "type",
    "source_id",
    "new_id",
)


def migration_campaigns(report: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """``(task key, record)`` for every campaign of every migrate task (not a rollback) of ``report``."""
    for task in report.get("tasks") or ():
        if not isinstance(task, Mapping) or task.get("type") != "migrate":
            continue
        details = task.get("details")
        if not isinstance(details, Mapping):
            continue
        for record in details.get("campaigns") or ():
            if isinstance(record, Mapping):
                yield str(task.get("key")), record


def migration_map_rows(report: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """One row per mapped object (campaign, ad sets, ads) of every migrated campaign."""
    for key, record in migration_campaigns(report):
        for entry in record.get("id_map") or ():
            if not isinstance(entry, Mapping):
                continue
            yield {
                "task": key,
                "source_campaign_id": record.get("source_id"),
                "campaign_name": record.get("name"),
                "action": record.get("action"),
                "state": record.get("state"),
                "verified": record.get("verified"),
                "switch": record.get("switch"),
                "type": entry.get("type"),
                "source_id": entry.get("source_id"),
                "new_id": entry.get("copied_id"),
            }


def migration_csv_path(csv_path: Path) -> Path:
    return csv_path.with_name(csv_path.stem + ".migration.csv")


def write_migration_csv(report: Mapping[str, Any], csv_path: Path) -> Path | None:
    """Write the old → new map next to the CSV report; ``None`` (nothing written) without a migration."""
    rows = list(migration_map_rows(report))
    if not rows:
        return None
    path = migration_csv_path(csv_path)
    with AtomicFile(path, newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(MAP_COLUMNS)
        for row in rows:
            writer.writerow(safe_cell(row[c]) for c in MAP_COLUMNS)
    return path
