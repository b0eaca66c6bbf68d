"""Edge listings: ``{"data", "paging"}`` with cursors, status filtering and ``filtering`` on fields.

S003 §Paginated Results: cursor pagination with ``limit``, ``after`` / ``before`` and ``paging.next`` /
``previous`` links; edges hide ARCHIVED (unless filtered for) and DELETED objects (S003 §Manage Your Ad Object's
Status, via :func:`~bulk_engine.simulator.status.visible_in_edge`). Every edge of ad objects answers through
:func:`list_edge` (objects.py, copies.py), each row rendered by :func:`~bulk_engine.simulator.render.render`.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from . import status
from .context import CallContext
from .errors import invalid_param
from .render import render
from .store import Node, decode_cursor, encode_cursor

__all__ = ["list_edge"]


def list_edge(ctx: CallContext, items: list[Node], *, status_filterable: bool = True) -> dict[str, Any]:
    """An edge answer with cursor pagination (S003 §Paginated Results) and status filtering."""
    params = ctx.params
    if status_filterable:
        wanted = _status_filter(ctx)
        items = [n for n in items if status.visible_in_edge(ctx.store, n, wanted, ctx.now)]
    items = _field_filter(ctx, items)
    items = sorted(items, key=lambda n: n.seq, reverse=True)  # newest first, like Ads Manager lists
    limit = params.int("limit", ctx.config.page_size_default) or ctx.config.page_size_default
    if limit < 1:
        raise invalid_param("Param limit must be a positive integer", "limit")
    limit = min(limit, ctx.config.page_size_max)
    too_much = ctx.core.faults.reduce_data(limit)  # the "reduce the amount of data" fault (faults.py)
    if too_much is not None:
        raise too_much
    start = 0
    after, before = params.str("after"), params.str("before")
    if after or before:
        cursor_id = decode_cursor(after or before or "")
        positions = {n.id: i for i, n in enumerate(items)}
        if cursor_id is None or (cursor_id not in positions and cursor_id not in ctx.store):
            which = "After" if after else "Before"
            raise invalid_param(f"The {which} Cursor specified is invalid", "after" if after else "before")
        if cursor_id in positions:
            start = positions[cursor_id] + 1 if after else max(0, positions[cursor_id] - limit)
        else:  # cursor object left the list (e.g. archived): resume from its place in creation order
            cursor_seq = ctx.store.get(cursor_id).seq  # type: ignore[union-attr]
            start = next((i for i, n in enumerate(items) if n.seq < cursor_seq), len(items))
    page = items[start : start + limit]
    body: dict[str, Any] = {"data": [render(ctx, n, params.str("fields")) for n in page]}
    paging: dict[str, Any] = {}
    if page:
        paging["cursors"] = {"before": encode_cursor(page[0].id), "after": encode_cursor(page[-1].id)}
        base = f"{ctx.request.base_url}/{ctx.version}/{ctx.request.path}"
        query = {
            k: v
            for k, v in params.raw().items()
            if k not in ("after", "before", "access_token", "appsecret_proof")
        }
        query = {k: (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in query.items()}
        # Graph's paging links carry the caller's token (and proof) so they can be followed as given —
        # which is also why clients must never log or report raw edge answers.
        if ctx.request.token:
            query["access_token"] = ctx.request.token
        if ctx.request.appsecret_proof:
            query["appsecret_proof"] = ctx.request.appsecret_proof
        if start + limit < len(items):
            paging["next"] = (
                f"{base}?{urlencode({**query, 'limit': limit, 'after': paging['cursors']['after']})}"
            )
        if start > 0:
            paging["previous"] = (
                f"{base}?{urlencode({**query, 'limit': limit, 'before': paging['cursors']['before']})}"
            )
    body["paging"] = paging
    summary = params.str("summary")
    if summary and "total_count" in summary:
        body["summary"] = {"total_count": len(items)}
    return body


_NAME_OPERATORS = {"EQUAL", "NOT_EQUAL", "CONTAIN", "NOT_CONTAIN", "IN", "NOT_IN", "STARTS_WITH"}
_LABEL_OPERATORS = {"ANY", "ALL", "NONE"}


def _field_filter(ctx: CallContext, items: list[Node]) -> list[Node]:
    """``filtering=[{"field", "operator", "value"}]`` on ``name`` and ``adlabels`` (all filters must match).

    ``name``: EQUAL / NOT_EQUAL / CONTAIN / NOT_CONTAIN (case-insensitive, as in Ads Manager search) / IN /
    NOT_IN / STARTS_WITH. ``adlabels``: ANY / ALL / NONE of the given labels, matched by label id or name
    (the Ad Label reference: "Supported operators are ALL and ANY: for ids and label names matching").
    ``id`` / ``campaign.id`` / ``adset.id`` (EQUAL, NOT_EQUAL, IN, NOT_IN) and ``created_time`` /
    ``updated_time`` (GREATER_THAN, LESS_THAN UNIX seconds) as an export asks for them (protocol/edges.py).
    Other fields are left to their own handlers (``effective_status``) or ignored.
    """
    filtering = ctx.params.json("filtering")
    if not isinstance(filtering, list):
        return items
    for flt in filtering:
        if not isinstance(flt, dict):
            continue
        field, value = str(flt.get("field", "")), flt.get("value")
        operator = str(flt.get("operator", "")).upper()
        if field == "name":
            if operator not in _NAME_OPERATORS:
                raise invalid_param(
                    f"Filtering operator {operator} is not supported for field name", "filtering"
                )
            items = [n for n in items if _name_matches(n.get("name"), operator, value)]
        elif field == "adlabels":
            if operator not in _LABEL_OPERATORS:
                raise invalid_param(
                    f"Filtering operator {operator} is not supported for field adlabels", "filtering"
                )
            wanted = {str(v) for v in (value if isinstance(value, list) else [value])}
            items = [n for n in items if _labels_match(n.get("adlabels"), operator, wanted)]
        elif field in _ID_FILTERS:
            items = _id_filter(items, field, operator, value)
        elif field in ("created_time", "updated_time"):
            items = _time_filter(items, field, operator, value)
    return items


# ``id`` and a parent's id in DOT notation (S003 §Insights best practices: ``adset.id`` IN […]), and the
# node times in UNIX seconds; the operators are the export's vocabulary (protocol/edges.py).
_ID_FILTERS = {"id": None, "campaign.id": "campaign_id", "adset.id": "adset_id"}


def _id_filter(items: list[Node], field: str, operator: str, value: Any) -> list[Node]:
    from bulk_engine.protocol.edges import ID_OPERATORS

    if operator not in ID_OPERATORS:
        raise invalid_param(f"Filtering operator {operator} is not supported for field {field}", "filtering")
    wanted = {str(v) for v in (value if isinstance(value, list) else [value])}
    key = _ID_FILTERS[field]
    keep = operator in ("EQUAL", "IN")
    return [n for n in items if ((n.id if key is None else str(n.get(key, ""))) in wanted) == keep]


def _time_filter(items: list[Node], field: str, operator: str, value: Any) -> list[Node]:
    from bulk_engine.protocol.edges import TIME_OPERATORS

    if operator not in TIME_OPERATORS or isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid_param(
            f"Filtering on {field} takes GREATER_THAN or LESS_THAN and UNIX seconds", "filtering"
        )
    out = []
    for n in items:
        at = status.parse_time(n.get(field))
        if at is not None and (at > value if operator == "GREATER_THAN" else at < value):
            out.append(n)
    return out


def _name_matches(name: Any, operator: str, value: Any) -> bool:
    text = str(name or "")
    if operator in ("IN", "NOT_IN"):
        values = {str(v) for v in (value if isinstance(value, list) else [value])}
        return (text in values) == (operator == "IN")
    needle = str(value if value is not None else "")
    if operator == "EQUAL":
        return text == needle
    if operator == "NOT_EQUAL":
        return text != needle
    if operator == "STARTS_WITH":
        return text.startswith(needle)
    return (needle.lower() in text.lower()) == (operator == "CONTAIN")


def _labels_match(labels: Any, operator: str, wanted: set[str]) -> bool:
    if isinstance(labels, str):
        try:
            labels = json.loads(labels)
        except ValueError:
            labels = []
    have: set[str] = set()
    for label in labels if isinstance(labels, list) else []:
        if isinstance(label, dict):
            have.update(str(label[k]) for k in ("id", "name") if label.get(k) is not None)
        elif label is not None:
            have.add(str(label))
    if operator == "ANY":
        return bool(have & wanted)
    if operator == "ALL":
        return wanted <= have
    return not have & wanted


def _status_filter(ctx: CallContext) -> set[str] | None:
    raw = ctx.params.list("effective_status")
    if raw is None:
        filtering = ctx.params.json("filtering")
        if isinstance(filtering, list):
            for f in filtering:
                if isinstance(f, dict) and str(f.get("field", "")).endswith("effective_status"):
                    values = f.get("value")
                    raw = values if isinstance(values, list) else [values]
    if raw is None:
        return None
    allowed = status.EFFECTIVE_STATUS_FILTER_VALUES
    wanted = {str(v).upper() for v in raw}
    bad = sorted(wanted - allowed)
    if bad:
        raise invalid_param(
            f"Param effective_status[0] must be one of {{{', '.join(sorted(allowed))}}} - got {bad[0]}",
            "effective_status",
        )
    status.check_status_filter(ctx, wanted)  # §9.3 #9: DELETED in an edge filter
    return wanted
