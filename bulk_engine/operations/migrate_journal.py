"""A migration as its journal remembers it: per campaign the action, the result's id, the old → new map and
whether the switch-over paused the source — what a rollback needs, without the report.

Why: a run killed before it wrote its report must still be undoable, and a resumed run and a rollback must
see the same map. Every fact comes from one journaled operation of the migrate task (op ids, :mod:`.migrate`):

- ``<key>/migrate/<source>``: the plan says the action (``POST <source>/copies`` = copy and migrate, ``POST
  <source>`` = in place); a copy's answer has ``copied_campaign_id`` and ``ad_object_ids``;
- ``<key>/chunk/<source>[/<ad set>[/<ad>]]``: the chunked copy that replaced a copy over the synchronous
  limit (its shell's answer is the new campaign, each piece's one copied object), ``<key>/migrate-copy/<source>``
  its migration in place;
- ``<key>/map/<source>/<new>/{adsets,ads}/p<n>``: the tree read of the result, the map record
  (:mod:`.migrate_verify`), completing the map exactly as the run did (:func:`~.migrate_record.full_map`);
- ``<key>/switch/<source>``: the pause of the source, sent only for an ACTIVE one (so its status before was
  ACTIVE). One ``sent`` at a crash may have been applied: counted as paused — the rollback reads the status
  before it writes, so a pause that never happened costs nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from bulk_engine.persistence.codec import decode_plan

from .base import Issue
from .copy import _mapping_from_result
from .migrate_record import MigrationRecord, full_map, map_entry

__all__ = ["journal_issues", "journal_records", "migration_accounts"]

_MAYBE_APPLIED = ("succeeded", "sent")


def _task_ops(journal: Any, job_id: str) -> dict[str, dict[str, Any]]:
    """task key → op id → journaled op, over every engine job of ``job_id`` (``<job>/<key>/<n>``)."""
    prefix = f"{job_id}/"
    out: dict[str, dict[str, Any]] = {}
    for engine_job in journal.job_ids():
        if not engine_job.startswith(prefix):
            continue
        key = engine_job[len(prefix) :].split("/", 1)[0]
        ops = out.setdefault(key, {})
        for rec in journal.iter_ops(engine_job):
            ops[rec.op_id] = rec
    return out


def _result(rec: Any) -> Any:
    try:
        return json.loads(rec.result) if rec is not None and rec.result else None
    except ValueError:
        return None


def _succeeded(rec: Any) -> bool:
    return rec is not None and rec.status.value == "succeeded"


def _copied_id(rec: Any, key: str) -> str | None:
    body = _result(rec)
    found = body.get(key) if isinstance(body, dict) else None
    return str(found) if found else (str(rec.graph_id) if rec.graph_id else None)


def _migrate_ops(ops: Mapping[str, Any], key: str) -> Iterator[tuple[str, Any]]:
    pattern = re.compile(rf"{re.escape(key)}/migrate/(\d+)")
    for op_id, rec in ops.items():
        found = pattern.fullmatch(op_id)
        if found and rec.kind == "migrate":
            yield found.group(1), rec


def migration_accounts(journal: Any, job_id: str) -> dict[str, str]:
    """The migrate tasks of ``job_id`` that sent a migration: task key → ad account."""
    out: dict[str, str] = {}
    for key, ops in _task_ops(journal, job_id).items():
        for _, rec in _migrate_ops(ops, key):
            out[key] = rec.account_id
            break
    return out


def journal_records(journal: Any, job_id: str) -> dict[str, list[MigrationRecord]]:
    """Per migrate task of ``job_id``: one record per campaign whose migration was planned (see the module
    docstring); fields the journal does not hold (name, eligibility, …) stay empty."""
    out: dict[str, list[MigrationRecord]] = {}
    for key, ops in _task_ops(journal, job_id).items():
        records = [_record(key, source, rec, ops) for source, rec in _migrate_ops(ops, key)]
        if records:
            out[key] = records
    return out


def _record(key: str, source: str, rec: Any, ops: Mapping[str, Any]) -> MigrationRecord:
    path = decode_plan(json.loads(rec.plan)).path
    parts = [str(p) for p in path] if isinstance(path, tuple) else str(path).split("/")
    copy = parts[-1] == "copies"
    record = MigrationRecord(source, "", "", "from the journal")
    record.action = "copy_and_migrate" if copy else "migrate_in_place"
    shell = ops.get(f"{key}/chunk/{source}")
    if _succeeded(rec):
        record.state = "migrated"
        if copy:
            mapping = _mapping_from_result(_result(rec), "campaign", source, "sync")
            record.new_id = str(mapping["new_id"]) if mapping["new_id"] else None
            record.id_map = mapping["objects"] or [map_entry("campaign", source, record.new_id)]
        else:
            record.new_id, record.id_map = source, [map_entry("campaign", source, source)]
    elif copy and shell is not None and _succeeded(shell):
        record.new_id = _copied_id(shell, "copied_campaign_id")
        record.fallback = "chunked copy"
        record.id_map = [map_entry("campaign", source, record.new_id), *_pieces(key, source, ops)]
        record.state = "migrated" if _succeeded(ops.get(f"{key}/migrate-copy/{source}")) else "failed"
    else:
        record.state = "failed" if rec.status.value in ("failed", "skipped") else "not_run"
    if record.new_id:
        record.id_map = full_map(record, *_map_read(key, source, record.new_id, ops))
    switch = ops.get(f"{key}/switch/{source}")
    if switch is not None and switch.status.value in _MAYBE_APPLIED:
        record.source_paused, record.source_status = True, "ACTIVE"
    return record


def _pieces(key: str, source: str, ops: Mapping[str, Any]) -> list[dict[str, str | None]]:
    """The objects of a chunked copy: ``<key>/chunk/<source>/<ad set>`` and ``…/<ad set>/<ad>``."""
    prefix = f"{key}/chunk/{source}/"
    out: list[dict[str, str | None]] = []
    for op_id, rec in ops.items():
        if not op_id.startswith(prefix) or not _succeeded(rec):
            continue
        tail = op_id[len(prefix) :].split("/")
        kind, copied = ("adset", "copied_adset_id") if len(tail) == 1 else ("ad", "copied_ad_id")
        out.append(map_entry(kind, tail[-1], _copied_id(rec, copied)))
    return out


def _map_read(
    key: str, source: str, new_id: str, ops: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ad sets and ads of the result as its map record read them (every page)."""
    found: dict[str, list[dict[str, Any]]] = {"adsets": [], "ads": []}
    for edge, items in found.items():
        prefix = f"{key}/map/{source}/{new_id}/{edge}/p"
        pages = sorted(
            (int(op_id[len(prefix) :]), rec)
            for op_id, rec in ops.items()
            if op_id.startswith(prefix) and op_id[len(prefix) :].isdigit() and _succeeded(rec)
        )
        for _, rec in pages:
            body = _result(rec)
            data = body.get("data") if isinstance(body, dict) else None
            items.extend(i for i in data or () if isinstance(i, dict))
    return found["adsets"], found["ads"]


def journal_issues(
    target: str, job_id: str, base_dir: Path, field: str = "rollback_journal"
) -> Iterator[Issue]:
    """Problems of the journal to roll back from, found before any call: missing, unreadable, or holding no
    migration of ``job_id``."""
    from bulk_engine.errors import JournalError
    from bulk_engine.persistence import is_journal_url, open_journal

    where = target if is_journal_url(target) else str(base_dir / target)
    shown = _shown(target)
    if not is_journal_url(target) and not Path(where).is_file():
        yield Issue((field,), f"journal not found: {where}", shown, "migrate.rollback.missing")
        return
    try:
        journal = open_journal(where)
    except (JournalError, OSError) as err:
        yield Issue((field,), f"cannot open the journal: {err}", shown, "migrate.rollback.journal")
        return
    try:
        found = migration_accounts(journal, job_id)
    finally:
        journal.close()
    if not found:
        yield Issue(
            ("rollback_job",),
            f"the journal holds no migration sent by job {job_id!r}",
            job_id,
            "migrate.rollback.empty",
        )


def _shown(target: str) -> str:
    """``target`` as an issue may quote it: a URL's password replaced (secrets never reach an error)."""
    from urllib.parse import urlsplit

    password = urlsplit(target).password if "://" in target else None
    return target.replace(f":{password}@", ":***@") if password else target
