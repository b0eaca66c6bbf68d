"""Messages a person can act on: what went wrong, in their terms, and what to do next."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from bulk_engine.wording import duration, wait_subject  # shared with the engine's own log lines

__all__ = [
    "AUTH_CODES",
    "auth_advice",
    "auth_error",
    "auth_failure",
    "clock_time",
    "describe_throttle",
    "describe_wait",
    "duration",
    "missing_token_advice",
    "unanswered_advice",
    "unreachable",
    "unreachable_advice",
    "wait_subject",
]

AUTH_CODES = frozenset({190, 102, 2500})

_TOKEN_HOWTO = (
    "Get a new access token and put it in META_ACCESS_TOKEN:\n"
    "  • for unattended jobs, a System User token: Meta Business Suite → Business settings → Users → "
    "System users → Generate new token (choose your app, tick ads_management and ads_read); it does not "
    "expire unless revoked;\n"
    "  • for a quick manual run, a User token from the Graph API Explorer "
    "(https://developers.facebook.com/tools/explorer/, add the ads_management permission); it expires "
    "within hours;\n"
    "  • check a token with the Access Token Debugger (https://developers.facebook.com/tools/debug/accesstoken/).\n"
    "Then: export META_ACCESS_TOKEN=… (never pass a token as a command-line argument)."
)

_SUBCODES = {
    458: "the app is no longer authorised by the user",
    459: "the user must log in to facebook.com to fix a checkpoint on their account",
    460: "the token was invalidated (password changed, or Facebook reset the session for security reasons)",
    463: "the token has expired",
    464: "the user account is unconfirmed",
    467: "the token is invalid (logged out, revoked, or malformed)",
    492: "the user's role on the Page or ad account no longer allows this",
}


def missing_token_advice() -> str:
    return (
        "META_ACCESS_TOKEN is not set: the access token is read from the environment only.\n" + _TOKEN_HOWTO
    )


def auth_failure(operations: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The first Graph auth error (190 / 102…) among failed operations, if any."""
    for op in operations:
        error = op.get("error")
        if op.get("state") == "failed" and isinstance(error, Mapping) and error.get("code") in AUTH_CODES:
            return error
    return None


def auth_error(failure_groups: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The Graph auth error (190 / 102…) of the report's ``failures_by_code``, as an error (code, subcode,
    message) for :func:`auth_advice`; the groups suffice, so no operation needs to be held for it."""
    for group in failure_groups:
        if isinstance(group, Mapping) and group.get("code") in AUTH_CODES:
            return {
                "code": group.get("code"),
                "error_subcode": group.get("subcode"),
                "message": group.get("message"),
            }
    return None


def auth_advice(error: Mapping[str, Any]) -> str:
    code, subcode = error.get("code"), error.get("error_subcode")
    what = _SUBCODES.get(subcode) if isinstance(subcode, int) else None
    label = f"{code}/{subcode}" if subcode else str(code)
    head = f"The access token was rejected (Graph error {label}): it is invalid or has expired"
    if what:
        head += f" — {what}"
    message = str(error.get("message") or "").strip()
    detail = f"\nGraph said: {message}" if message else ""
    return f"{head}.{detail}\nThe job stopped sending; operations not yet sent were skipped.\n{_TOKEN_HOWTO}"


def unreachable(operations: Iterable[Mapping[str, Any]]) -> bool:
    """True when operations failed without any Graph answer and none succeeded: the URL is not reachable."""
    failed_without_answer = succeeded = 0
    for op in operations:
        if op.get("state") == "succeeded":
            succeeded += 1
        elif op.get("state") == "failed" and not op.get("error"):
            failed_without_answer += 1
    return failed_without_answer > 0 and succeeded == 0


def unreachable_advice(graph_url: str) -> str:
    return (
        f"No answer from {graph_url}: every request failed in transport (connection refused, timeout, DNS). "
        "Check --graph-url (or META_GRAPH_URL), the network and any proxy, then run the job again."
    )


def unanswered_advice(graph_url: str, answers: Mapping[int, int], unanswered: int = 0) -> str:
    """No operation succeeded and some failed without a Graph answer, yet the server did answer (e.g. HTML
    502 pages from a proxy whose Graph upstream is down): say what it answered, not "unreachable"."""
    total = sum(answers.values())
    statuses = ", ".join(f"HTTP {code} × {n:,}" for code, n in sorted(answers.items(), key=lambda kv: -kv[1]))
    lost = f"; {unanswered:,} more got no answer at all (transport)" if unanswered else ""
    return (
        f"No Graph API answer from {graph_url}: the server answered {total:,} request"
        f"{'s' if total != 1 else ''} ({statuses}){lost}, but never as the Graph API does (a JSON batch "
        "answer). Is --graph-url (or META_GRAPH_URL) the Graph API, or a proxy or load balancer whose upstream "
        "is down? Fix it, then run the job again."
    )


def clock_time(epoch: float) -> str:
    """Local wall-clock time ``HH:MM:SS`` of a UNIX time."""
    return time.strftime("%H:%M:%S", time.localtime(epoch))


def describe_throttle(
    account_id: str,
    buc_type: str,
    parked_s: float,
    code: int | None,
    subcode: int | None,
    usage_pct: float | None,
    *,
    resumes_at_epoch: float,
) -> str:
    """``act_1 (ads_management) throttled [80004/2446079] at 100 % usage: paused until 14:03:12 (in 60 s)``."""
    label = ""
    if code is not None:
        label = f" [Graph code {code}" + (f"/{subcode}" if subcode else "") + "]"
    usage = f" at {usage_pct:.0f} % usage" if usage_pct is not None else ""
    return (
        f"ad account {account_id} ({buc_type}) throttled{label}{usage}: paused until "
        f"{clock_time(resumes_at_epoch)} (in {duration(parked_s)}); other accounts keep going"
    )


def describe_wait(
    scope: str,
    account_id: str | None,
    buc_type: str | None,
    reason: str,
    usage_pct: float | None,
    wait_s: float,
    *,
    resumes_at_epoch: float,
) -> str:
    """``ad account act_1 (ads_management) waits 2 min 10 s, until 14:05:33: pacing: usage 97 % at the 97 %
    ceiling`` — the usage is added when the reason does not already give it."""
    usage = ""
    if usage_pct is not None and f"{usage_pct:.0f} %" not in reason:
        usage = f" (usage {usage_pct:.0f} %)"
    return (
        f"{wait_subject(scope, account_id, buc_type)} waits {duration(wait_s)}, until "
        f"{clock_time(resumes_at_epoch)}: {reason}{usage}"
    )
