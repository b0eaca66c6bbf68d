"""The ``export`` task: read an ad-account edge with chosen fields and filters into a CSV or JSON Lines file.

What it reads (S003 §Ad Account, Ad Campaigns / Adsets / Ads / Ad Creatives / Ad Images, §Paginated
Results): ``GET act_<id>/<edge>?fields=…&filtering=[…]&effective_status=[…]&limit=N``, then the same with
``after=<paging.cursors.after>`` while ``paging.next`` is present (:mod:`.pages` checks every answer; the
``next`` URL is never followed). Edges, fields and filters are checked against
:mod:`bulk_engine.protocol.edges` before any call, with the Graph code the server would answer (100).

How it runs: each page is one engine job of one ``GET`` (kind ``read``), so it is paced by the engine's one
governor like every call: charged to the business use case of ad-object reads (``ads_management``: S003
§Business Use Case Rate Limits, "all endpoints with the Ads Management business use case will share the
total quota within the same ad account") and re-charged to whatever type ``X-Business-Use-Case-Usage``
reports for the ``GET <edge>`` family (:mod:`bulk_engine.execution.charging`); throttles park that
(account, use case) pair, and transient errors are retried, as for any call. Pages follow each other (each
needs the cursor of the one before), so an export holds one page in memory at a time and streams its rows
to the file (:mod:`.exportfile`: constant memory, written atomically).

Page size: ``page_size`` (default 500) is the largest ``limit`` asked for. When a page fails with code 1
(S003 §Handling Errors: "API Unknown … Possibly a temporary issue"; Graph's "Please reduce the amount of
data you're asking for" is this code, HTTP 500 — codes, never messages, are judged) after the engine's
retries, the same cursor is asked again with half the ``limit``, which then grows back
(:class:`~.pagesize.AdaptivePageSize`). Refused pages are not failures of the task (their work is redone
smaller); the engine's counters still count their calls. Code 1/99 (a wrong parameter) and every other
error end the export.

Engine jobs are named ``<job>/<task>/p<page>-<limit>-<cursor digest>``: a resumed job (the same job id, its
journal) answers the pages it already read from the journal and goes on from the last cursor, as every flow's
reads are answered on a resume; a new job id reads the server afresh. The task's report keeps one small
outcome per page (``{"rows": n}``), never the page itself: the rows are in the output file only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Iterator
from typing import Any, Final, Literal

from pydantic import BaseModel, Field, StrictInt, StrictStr

from bulk_engine.planning.graph import Operation, OpKind
from bulk_engine.protocol.edges import EDGE_FIELDS, EDGE_NODE, STATUS_EDGES, filter_operators
from bulk_engine.results import Outcome, OutcomeState
from bulk_engine.scrub import Scrubber

from .base import EngineLike, Issue, TaskEnv
from .exportfile import ExportFormat, RowWriter, format_for, open_rows
from .pages import BadPage, CursorTrail, parse_page
from .pagesize import AdaptivePageSize, PageSizeFloor
from .specs import job_model_config
from .status import EffectiveStatus
from .task import TaskBase, TaskReport

__all__ = ["EXPORT_EDGES", "ExportFilter", "ExportTask", "split_field_names"]

Edge = Literal["campaigns", "adsets", "ads", "adcreatives", "adimages", "advideos"]
EXPORT_EDGES: tuple[str, ...] = tuple(EDGE_FIELDS)
DEFAULT_PAGE_SIZE = 500
MAX_PAGE_SIZE = 5000
MAX_PAGES = 1_000_000
MAX_LISTED_REFUSALS = 50  # the report stays small; ``refused_pages`` counts them all
REDUCE_DATA_CODE = 1
_WRONG_LEVEL_SUBCODE = 99  # 1/99 is a wrong parameter, not a load answer (protocol/errors.py)
_LIST_OPERATORS = frozenset({"IN", "NOT_IN", "ANY", "ALL", "NONE"})


class ExportFilter(BaseModel):
    """One ``filtering`` entry: ``{"field": "name", "operator": "CONTAIN", "value": "spring"}``."""

    model_config = job_model_config("ExportFilter")

    field: str = Field(description="name, id, adlabels, effective_status, created_time, updated_time, …")
    operator: str = Field(description="EQUAL, NOT_EQUAL, CONTAIN, IN, ANY, GREATER_THAN, …")
    value: StrictStr | StrictInt | list[StrictStr | StrictInt] = Field(
        description="a list for IN / NOT_IN / ANY / ALL / NONE; UNIX seconds for *_time"
    )


class ExportTask(TaskBase):
    """Read every object of one ad-account edge into a file (see the module docstring)."""

    model_config = job_model_config("ExportTask")

    type: Literal["export"]
    edge: Edge = Field(description="The ad-account edge to read")
    fields: list[str] = Field(
        min_length=1, description="Fields to read (Graph names; 'campaign{name}' expands a reference)"
    )
    filtering: list[ExportFilter] = Field(default_factory=list, description="Graph's filtering, ANDed")
    effective_status: list[EffectiveStatus] | None = Field(
        None, description="campaigns, adsets and ads only; DELETED objects are never returned by an edge"
    )
    output: str = Field(min_length=1, description="Output file (relative to the job file's folder)")
    format: ExportFormat | None = Field(
        None, description="csv or jsonl (default: from the output's extension)"
    )
    page_size: int = Field(
        DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description="Largest limit per page (it shrinks on demand)"
    )
    max_rows: int | None = Field(None, ge=1, description="Stop after this many rows")

    @property
    def needs_reads(self) -> bool:
        return True

    @property
    def output_format(self) -> ExportFormat | None:
        return self.format or format_for(self.output)

    def columns(self) -> list[str]:
        names = split_field_names(self.fields)
        return names if "id" in names else ["id", *names]

    # --- validation -----------------------------------------------------------------------------------
    def rule_issues(self) -> Iterator[Issue]:
        node = EDGE_NODE[self.edge]
        known = EDGE_FIELDS[self.edge]
        for i, entry in enumerate(self.fields):
            if entry.count("{") != entry.count("}"):
                yield Issue(("fields", i), "unbalanced { } in a field", entry, "export.field", code=100)
                continue
            unknown = [_field_name(spec) or spec.strip() or "(empty)" for spec in _split(entry)]
            unknown = list(dict.fromkeys(name for name in unknown if name not in known))
            if unknown:
                yield Issue(
                    ("fields", i),
                    f"{', '.join(repr(n) for n in unknown)} "
                    f"{'is not a field' if len(unknown) == 1 else 'are not fields'} of {node} (the {self.edge} "
                    f"edge); known: {', '.join(sorted(known))}",
                    entry,
                    "export.field",
                    code=100,
                )
                continue
            nested = next(filter(None, map(_expansion_problem, _split(entry))), None)
            if nested is not None:
                yield Issue(("fields", i), nested, entry, "export.nested")
        for i, flt in enumerate(self.filtering):
            yield from self._filter_issues(i, flt)
        if self.effective_status is not None and self.edge not in STATUS_EDGES:
            yield Issue(
                ("effective_status",),
                f"the {self.edge} edge takes no effective_status (only campaigns, adsets and ads)",
                self.effective_status,
                "export.effective_status",
                code=100,
            )
        if self.output_format is None:
            yield Issue(
                ("output",),
                "cannot tell the format from the extension: name the file .csv or .jsonl, or set format",
                self.output,
                "export.format",
            )

    def _filter_issues(self, i: int, flt: ExportFilter) -> Iterator[Issue]:
        operators = filter_operators(self.edge, flt.field)
        if operators is None:
            yield Issue(
                ("filtering", i, "field"),
                f"{flt.field!r} is not a filter field of the {self.edge} edge",
                flt.field,
                "export.filter_field",
                code=100,
            )
            return
        if flt.operator not in operators:
            yield Issue(
                ("filtering", i, "operator"),
                f"operator {flt.operator} is not supported for {flt.field} (one of {', '.join(sorted(operators))})",
                flt.operator,
                "export.filter_operator",
                code=100,
            )
            return
        wants_list = flt.operator in _LIST_OPERATORS
        if wants_list != isinstance(flt.value, list) or (wants_list and not flt.value):
            shape = "a non-empty list" if wants_list else "a single value"
            yield Issue(
                ("filtering", i, "value"),
                f"{flt.operator} takes {shape}",
                flt.value,
                "export.filter_value",
                code=100,
            )
        elif flt.field.endswith("_time") and (isinstance(flt.value, bool) or not isinstance(flt.value, int)):
            yield Issue(
                ("filtering", i, "value"),
                f"{flt.field} is compared in UNIX seconds: give a whole number",
                flt.value,
                "export.filter_value",
                code=100,
            )

    def estimate(self, env: TaskEnv) -> dict[str, int]:
        return {}  # pages are reads: not counted in the progress of writes

    def params(self, limit: int, after: str | None) -> dict[str, Any]:
        """The query of one page."""
        names = [spec.strip() for spec in self.fields]
        params: dict[str, Any] = {
            "fields": ",".join(names if "id" in split_field_names(names) else ["id", *names]),
            "limit": limit,
        }
        if self.filtering:
            params["filtering"] = [flt.model_dump() for flt in self.filtering]
        if self.effective_status:
            params["effective_status"] = sorted(set(self.effective_status))
        if after is not None:
            params["after"] = after
        return params

    # --- execute --------------------------------------------------------------------------------------
    async def execute(self, engine: EngineLike, env: TaskEnv) -> TaskReport:
        report = TaskReport.for_env(env, "export")
        target = env.resolve(self.output)
        fmt = self.output_format or "jsonl"
        sizes = AdaptivePageSize(self.page_size)
        details: dict[str, Any] = {
            "edge": self.edge,
            "output": str(target),
            "format": fmt,
            "rows": 0,
            "pages": 0,
            "written": False,
        }
        report.details = details
        only_check = env.ctx.validate_only
        writer: RowWriter | None = None
        if not only_check:
            writer = open_rows(target, fmt, self.columns(), scrubber=engine_scrubber(engine))
        ok = False
        try:
            ok = await self._pages(engine, env, report, sizes, writer, details)
        finally:
            if writer is not None:
                writer.finish(ok)
            details["written"] = ok and writer is not None
            details["page_size"] = {
                "requested": self.page_size,
                "final": sizes.limit,
                "smallest": sizes.smallest,
                "shrinks": sizes.shrinks,
                "grows": sizes.grows,
            }
            if only_check:
                details["validate_only"] = "read the first page only; no file written"
        return report

    async def _pages(
        self,
        engine: EngineLike,
        env: TaskEnv,
        report: TaskReport,
        sizes: AdaptivePageSize,
        writer: RowWriter | None,
        details: dict[str, Any],
    ) -> bool:
        """Read page after page into ``writer``; True when the edge was read to its end (or ``max_rows``)."""
        trail = CursorTrail()
        after: str | None = None
        rows = 0
        refusals: list[dict[str, Any]] = []
        details["refusals"] = refusals
        page = 0  # pages served; a refused page is asked again, smaller, under the same number
        for _ in range(MAX_PAGES):
            limit = sizes.limit if self.max_rows is None else min(sizes.limit, self.max_rows - rows)
            op = Operation(
                op_id=env.op_id(f"p{page}", f"l{limit}"),
                method="GET",
                path=f"{env.account_id}/{self.edge}",
                params=self.params(limit, after),
                account_id=env.account_id,
                kind=OpKind.READ,
            )
            outcome = await _run_page(engine, report, op, f"p{page}-{limit}-{_digest(after)}")
            if outcome is None:  # the run was stopped (signal, a deferral) before the page answered
                details["stopped"] = f"stopped before page {page + 1} answered"
                reason = f"the run stopped before page {page + 1} answered: nothing written"
                report.add(
                    Outcome(op.op_id, OutcomeState.SKIPPED, env.account_id, op.kind.value, reason=reason)
                )
                return False
            if outcome.state is not OutcomeState.SUCCEEDED:
                if _asks_for_less(outcome):
                    details["refused_pages"] = details.get("refused_pages", 0) + 1
                    if len(refusals) < MAX_LISTED_REFUSALS:
                        refusals.append({"page": page, "limit": limit, "reason": outcome.reason})
                    try:
                        sizes.refused()
                    except PageSizeFloor:
                        report.add(
                            _failed(outcome, "Graph refused even a page of 1 object: ask for fewer fields")
                        )
                        return False
                    continue
                report.add(outcome)
                return False
            try:
                parsed = parse_page(outcome.result)
                if parsed.after is not None:
                    trail.follow(parsed.after)
            except BadPage as bad:
                report.add(_failed(outcome, f"page {page + 1}: {bad}"))
                return False
            if writer is not None:
                for row in parsed.rows[: None if self.max_rows is None else self.max_rows - rows]:
                    writer.write(row)
            rows += len(parsed.rows)
            report.add(dataclasses.replace(outcome, result={"rows": len(parsed.rows)}))
            page += 1
            details["pages"] = page
            details["rows"] = writer.rows if writer is not None else rows
            sizes.succeeded()
            done = parsed.after is None or (self.max_rows is not None and rows >= self.max_rows)
            if done or env.ctx.validate_only:
                return not env.ctx.validate_only
            after = parsed.after
        details["stopped"] = f"more than {MAX_PAGES:,} requests"
        return False


def engine_scrubber(engine: Any) -> Scrubber:
    """The scrubber of ``engine``'s secrets, as the reports get theirs (``Scrubber(credentials.secrets())``,
    :mod:`bulk_engine.reporting.session`): through the wrappers a task may be handed (the CLI's lean engine,
    a backend override, Airflow's guard), each holding the engine as ``.engine``. None found: no secrets."""
    for _ in range(8):
        credentials = getattr(getattr(engine, "config", None), "credentials", None)
        if credentials is not None and callable(getattr(credentials, "secrets", None)):
            return Scrubber(credentials.secrets())
        engine = getattr(engine, "engine", None)
        if engine is None:
            break
    return Scrubber(())


async def _run_page(engine: EngineLike, report: TaskReport, op: Operation, name: str) -> Outcome | None:
    """One page as one engine job (named for what it asks: see the module docstring); its outcome, kept
    out of the report (the caller adds what it keeps)."""
    prefix, fingerprint = report.engine_job_prefix, report.engine_fingerprint
    started = time.monotonic()
    result = await engine.run(
        [op],
        job_id=f"{prefix}/{name}" if prefix else None,
        fingerprint=f"{fingerprint}/{name}" if fingerprint else None,
    )
    outcome = next((o for o in result.outcomes if o.op_id == op.op_id), None)
    report.absorb(dataclasses.replace(result, outcomes=()))
    report.elapsed_s += time.monotonic() - started
    return outcome


def _asks_for_less(outcome: Outcome) -> bool:
    """Code 1 (not 1/99): Graph's "Please reduce the amount of data you're asking for" (see the docstring)."""
    error = outcome.error
    return (
        outcome.state is OutcomeState.FAILED
        and error is not None
        and error.code == REDUCE_DATA_CODE
        and error.error_subcode != _WRONG_LEVEL_SUBCODE
    )


def _failed(outcome: Outcome, reason: str) -> Outcome:
    return dataclasses.replace(outcome, state=OutcomeState.FAILED, result=None, reason=reason)


def _digest(cursor: str | None) -> str:
    return hashlib.sha256((cursor or "").encode()).hexdigest()[:12] if cursor else "start"


def _field_name(spec: str) -> str:
    return spec.partition("{")[0].strip()


_REFERENCES: Final = {
    "campaign": "campaigns",
    "adset": "adsets",
    "creative": "adcreatives",
    "source_campaign": "campaigns",
    "source_adset": "adsets",
    "source_ad": "ads",
}
"""The fields that name another object, and the edge whose fields that object has (``campaign{name}``)."""


def _expansion_problem(spec: str) -> str | None:
    """Why the expansion in one field (``campaign{name,status}``) is refused, or ``None``.

    One level of plain fields only: an expanded *edge* (``campaign{ads{id}}``, ``campaign{ads}``) answers
    ``{"data": […], "paging": {"next": …}}`` inside each row, and on Graph that ``next`` link carries the
    access token — it would land in the file. Nothing in a row is followed or paged, so nothing is lost."""
    name, brace, rest = spec.partition("{")
    if not brace:
        return None
    name, inner = name.strip(), rest.strip()
    if not inner.endswith("}") or "{" in inner or "}" in inner[:-1]:
        return (
            f"{spec.strip()!r}: one level of expansion only, e.g. {name}{{id,name}} - a nested expansion reads "
            "an edge, whose paging links carry the access token"
        )
    names = [part.strip() for part in inner[:-1].split(",")]
    edge = _REFERENCES.get(name)
    allowed = EDGE_FIELDS[edge] if edge is not None else None
    bad = [part or "(empty)" for part in names if not part or (allowed is not None and part not in allowed)]
    if bad:
        what = f"fields of the {name}" if allowed is not None else "plain fields"
        return (
            f"{spec.strip()!r}: {', '.join(repr(b) for b in bad)} - only {what} can be expanded, not an edge "
            "(its paging links carry the access token)"
        )
    return None


def split_field_names(fields: list[str]) -> list[str]:
    """The top-level names of ``fields`` entries, each once, in order (``campaign{name}`` → ``campaign``);
    an entry may hold several (``"id,name"``)."""
    out: dict[str, None] = {}
    for entry in fields:
        for spec in _split(entry):
            name = _field_name(spec)
            if name:
                out[name] = None
    return list(out)


def _split(entry: str) -> list[str]:
    parts: list[str] = []
    depth, current = 0, ""
    for ch in entry:
        depth += (ch == "{") - (ch == "}")
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    return [*parts, current]
