"""Graph error bodies → :class:`GraphError`, and the retry decision → :class:`ErrorClass`.

Why: "Error handling should be done using only the Error Codes. The Description string is subject
to change without prior notice." (S003 §Handling Errors → Error Codes). The engine's retry loop,
the governor and the final report all key off :func:`classify` and :func:`throttle_scope`, so the
decisions live in one table here. Messages are never inspected.

Decision table (first matching row wins; seed references are S003 sections):

=====================================  ==========  ======================================================
code (subcode)                         class       source / reasoning
=====================================  ==========  ======================================================
negative code                          (subcode)   §Troubleshooting → Error Codes: "Negative-value error
                                                   codes are internal Facebook errors. Check
                                                   error_subcode" → classify the subcode as the code;
                                                   no subcode → TRANSIENT.
4, 17, 32, 613 (any subcode)           THROTTLED   §Platform Rate Limits → Error Codes (4 incl. 1504022
                                                   §Global Rate Limits; 613 incl. 1996). Scope platform.
17 + 2446079                           THROTTLED   §BUC → Error Codes: "V3.3 and Older Ads API excluding
                                                   Ads Insights" → scope ads_management.
341                                    THROTTLED   §Handling Errors: "Application limit reached ...
                                                   downtime or throttling. Wait and retry" → scope
                                                   platform (app-level, like 4).
80000–80014                            THROTTLED   §BUC → Error Codes (80004+2446079 ads_management,
                                                   80000 ads_insights, 80003 custom_audience, 80002
                                                   instagram, 80005 leadgen, 80006 messenger, 80001
                                                   pages, 80008 WhatsApp, 80009 catalog management,
                                                   80014 catalog batch); undocumented 800xx → scope
                                                   ``unknown`` (pause the whole account).
any code + subcode 2446079             THROTTLED   2446079 is the documented rate-limit subcode.
190, 102, 104, 415, 457                AUTH        §Handling Errors (190 expired token; 102 "API Session
                                                   ... Get a new access token" with or without subcode),
                                                   §Troubleshooting (104 incorrect signature), §Ad
                                                   Account reference error tables (415 two-factor
                                                   required, 457 invalid session origin). Retrying
                                                   with the same token cannot succeed.
type OAuthException, no code/subcode   AUTH        §Handling Errors: "If no subcode is present, the
                                                   login status or access token has expired".
1 + subcode 99                         PERMANENT   §Troubleshooting: wrong ``level`` parameter.
1, 2                                   TRANSIENT   §Handling Errors: "temporary issue due to downtime.
                                                   Wait and retry".
368                                    TRANSIENT   §Handling Errors: "Temporarily blocked for policies
                                                   violations — Wait and retry". Not THROTTLED: it is
                                                   not a quota, so pausing the account's BUC would be
                                                   wrong; the retry budget bounds long blocks.
1404078, 2859015 (code or subcode)     TRANSIENT   §Troubleshooting / §Handling Errors: "temporarily
                                                   blocked from performing this action" (same reasoning
                                                   as 368).
3902, 3910001                          TRANSIENT   §Ad Account reference ("technical issue ... try
                                                   again"); §Handling Errors ("try again later").
``is_transient: true``                 TRANSIENT   field of the error object (§Handling Errors →
                                                   blame_field_specs example); [inference] honour it.
                                                   ``is_transient: false`` never overrides the table.
3, 10, 200–299, 294                    PERMANENT   permission/capability (§Handling Errors,
                                                   §Troubleshooting): needs a human, not a retry.
100 (+ subcodes), 105, 194, 500, 506,  PERMANENT   validation (§Handling Errors, §Troubleshooting, ad
1500, 2500, 2635, 1885xxx, 1487xxx,                object references): fix the input.
2446xxx, 2490xxx, ...
other code                             by HTTP     5xx → TRANSIENT, otherwise PERMANENT (an unknown
                                                   validation code must not loop).
no error object                        by HTTP     None (null batch entry, S003 §Batch Requests →
                                                   Timeouts) / 5xx / 408 → TRANSIENT; 429 → THROTTLED;
                                                   401 → AUTH; 2xx → OK; other 4xx → PERMANENT.
=====================================  ==========  ======================================================
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bulk_engine.protocol.usage import BucType

__all__ = [
    "AUTH_CODES",
    "RATE_LIMIT_SUBCODE",
    "TRANSIENT_CODES",
    "ErrorClass",
    "GraphError",
    "classify",
    "classify_body",
    "parse_graph_error",
    "throttle_scope",
]


class ErrorClass(StrEnum):
    """What the engine should do with a per-operation outcome."""

    OK = "ok"
    TRANSIENT = "transient"  # retry with backoff (after reconciling unknown create outcomes)
    THROTTLED = "throttled"  # stop the (account, BUC) until the quota window lets us back in
    AUTH = "auth"  # token problem: surface for re-auth, never loop
    PERMANENT = "permanent"  # the request itself is wrong: fail the operation


RATE_LIMIT_SUBCODE = 2446079

_PLATFORM_THROTTLE_CODES = frozenset({4, 17, 32, 341, 613})
_BUC_SCOPES: Mapping[int, BucType] = {
    80000: BucType.ADS_INSIGHTS,
    80001: BucType.PAGES,
    80002: BucType.INSTAGRAM,
    80003: BucType.CUSTOM_AUDIENCE,
    80004: BucType.ADS_MANAGEMENT,
    80005: BucType.LEADGEN,
    80006: BucType.MESSENGER,
    80008: BucType.WHATSAPP_BUSINESS_MANAGEMENT,
    80009: BucType.CATALOG_MANAGEMENT,
    80014: BucType.CATALOG_BATCH,
}
AUTH_CODES = frozenset({190, 102, 104, 415, 457})
TRANSIENT_CODES = frozenset({1, 2, 368, 1404078, 2859015, 3902, 3910001})
_TRANSIENT_SUBCODES = frozenset({1404078, 2859015})


def throttle_scope(code: int | None, subcode: int | None = None) -> BucType | None:
    """The quota a throttle error belongs to, or ``None`` when ``code`` is not a throttle error.

    ``BucType.UNKNOWN`` means "throttled, scope undocumented": pause every scope of the account.
    """
    if code is None:
        return BucType.UNKNOWN if subcode == RATE_LIMIT_SUBCODE else None
    if code in _BUC_SCOPES:
        return _BUC_SCOPES[code]
    if 80000 <= code <= 80014:
        return BucType.UNKNOWN
    if code == 17 and subcode == RATE_LIMIT_SUBCODE:
        return BucType.ADS_MANAGEMENT
    if code in _PLATFORM_THROTTLE_CODES:
        return BucType.PLATFORM
    if subcode == RATE_LIMIT_SUBCODE:
        return BucType.UNKNOWN
    return None


@dataclass(frozen=True)
class GraphError:
    """The fields of a Graph ``{"error": {...}}`` body (S003 §Handling Errors → Error Responses).

    ``blame_field_specs`` comes from ``error_data`` (which Graph sends as an object or as a JSON
    string); each spec is the path of one offending field, e.g. ``(("daily_budget",),)``.
    """

    code: int | None = None
    error_subcode: int | None = None
    message: str = ""
    type: str | None = None
    error_user_title: str | None = None
    error_user_msg: str | None = None
    blame_field_specs: tuple[tuple[str, ...], ...] = ()
    fbtrace_id: str | None = None
    is_transient: bool | None = None
    http_status: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False, hash=False)

    @property
    def error_class(self) -> ErrorClass:
        return classify(self.http_status, self)

    @property
    def throttle_scope(self) -> BucType | None:
        code, subcode = _effective_codes(self)
        return throttle_scope(code, subcode)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for journals and reports (``raw`` excluded)."""
        return {
            "code": self.code,
            "error_subcode": self.error_subcode,
            "message": self.message,
            "type": self.type,
            "error_user_title": self.error_user_title,
            "error_user_msg": self.error_user_msg,
            "blame_field_specs": [list(spec) for spec in self.blame_field_specs],
            "fbtrace_id": self.fbtrace_id,
            "is_transient": self.is_transient,
            "http_status": self.http_status,
        }


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit() and len(text) < 20:
            return int(text)
    return None


def _str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float | bool):
        return str(value)
    return None


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    return None


def _blame_field_specs(error_data: Any) -> tuple[tuple[str, ...], ...]:
    if isinstance(error_data, str):
        try:
            error_data = json.loads(error_data)
        except (ValueError, RecursionError):
            return ()
    if not isinstance(error_data, Mapping):
        return ()
    specs = error_data.get("blame_field_specs")
    if not isinstance(specs, list):
        return ()
    out: list[tuple[str, ...]] = []
    for spec in specs:
        if isinstance(spec, str):
            out.append((spec,))
        elif isinstance(spec, list):
            parts = tuple(
                str(part) for part in spec if isinstance(part, str | int) and not isinstance(part, bool)
            )
            if parts:
                out.append(parts)
    return tuple(out)


def _decode(body: Any) -> Any:
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str):
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            return None
    return body


def parse_graph_error(body: Any, http_status: int | None = None) -> GraphError | None:
    """Extract a :class:`GraphError` from a response body (parsed JSON, JSON text or bytes).

    Returns ``None`` when the body carries no ``error`` member. Junk inside ``error`` degrades to
    missing fields; this function never raises.
    """
    data = _decode(body)
    if not isinstance(data, Mapping) or "error" not in data:
        return None
    err = data.get("error")
    if isinstance(err, str):
        return GraphError(message=err, http_status=http_status, raw={"message": err})
    if not isinstance(err, Mapping):
        return GraphError(message="", http_status=http_status)
    message = _str(err.get("message"))
    return GraphError(
        code=_int(err.get("code")),
        error_subcode=_int(err.get("error_subcode")),
        message=message if message is not None else "",
        type=_str(err.get("type")),
        error_user_title=_str(err.get("error_user_title")),
        error_user_msg=_str(err.get("error_user_msg")),
        blame_field_specs=_blame_field_specs(err.get("error_data")),
        fbtrace_id=_str(err.get("fbtrace_id")),
        is_transient=_bool(err.get("is_transient")),
        http_status=http_status,
        raw=dict(err),
    )


def _effective_codes(error: GraphError) -> tuple[int | None, int | None]:
    """Negative codes are internal: the subcode is the real code (S003 §Troubleshooting)."""
    if error.code is not None and error.code < 0:
        return error.error_subcode, None
    return error.code, error.error_subcode


def _classify_http(http_status: int | None) -> ErrorClass:
    if http_status is None:
        return ErrorClass.TRANSIENT
    if 200 <= http_status < 300:
        return ErrorClass.OK
    if http_status == 429:
        return ErrorClass.THROTTLED
    if http_status == 401:
        return ErrorClass.AUTH
    if 400 <= http_status < 500 and http_status != 408:
        return ErrorClass.PERMANENT
    return ErrorClass.TRANSIENT


def classify(http_status: int | None, error: GraphError | None) -> ErrorClass:
    """Map a per-operation outcome to an :class:`ErrorClass` (see the module table).

    ``http_status=None`` with no error means "no answer" (a ``null`` batch entry): TRANSIENT, and
    for creates the outcome is unknown -- reconcile before retrying.
    """
    if error is None:
        return _classify_http(http_status)
    code, subcode = _effective_codes(error)
    if error.code is not None and error.code < 0 and code is None:
        return ErrorClass.TRANSIENT
    if throttle_scope(code, subcode) is not None:
        return ErrorClass.THROTTLED
    if code in AUTH_CODES:
        return ErrorClass.AUTH
    if code is None and subcode is None and error.type == "OAuthException":
        return ErrorClass.AUTH
    if code == 1 and subcode == 99:
        return ErrorClass.PERMANENT
    if code in TRANSIENT_CODES or subcode in _TRANSIENT_SUBCODES:
        return ErrorClass.TRANSIENT
    if error.is_transient is True:
        return ErrorClass.TRANSIENT
    if code is None:
        http_class = _classify_http(http_status)
        return ErrorClass.PERMANENT if http_class is ErrorClass.OK else http_class
    if http_status is not None and http_status >= 500 and not _is_documented_permanent(code):
        return ErrorClass.TRANSIENT
    return ErrorClass.PERMANENT


_PERMANENT_SINGLE = frozenset({3, 10, 100, 105, 194, 294, 300, 500, 506, 1500, 2500, 2635, 2641, 2654, 2695})


def _is_documented_permanent(code: int) -> bool:
    """Codes the seeds document as input/permission problems, whatever the HTTP status says."""
    if code in _PERMANENT_SINGLE or 200 <= code <= 299:
        return True
    return code >= 1_000_000  # the 7-digit ad-object validation families (1487xxx, 1885xxx, 2446xxx...)


def classify_body(http_status: int | None, body: Any) -> tuple[ErrorClass, GraphError | None]:
    """Convenience: parse ``body`` and classify it in one step."""
    error = parse_graph_error(body, http_status)
    return classify(http_status, error), error
