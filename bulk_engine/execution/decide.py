"""The one place a Graph answer is judged: ``decide(subject, answer, attempts, policy) -> Action``.

Why: exactly-once creation rests on one distinction, made the same way for every answer the engine can
get: did the server *definitely* refuse the call (fail it, or retry it freely), or *may* it have executed
it (the outcome is unknown: a keyed create is looked up by its idempotency key before any re-send)?
Written three times (batch answers, idempotency lookups, rebuild probes), each covering a different subset,
that decision let a catch-all turn "we don't know" into "failed" and re-run creates blind. Now the runner's
batch answers, its lookups and the engine's probes all call :func:`decide`; it does no I/O and is
table-tested (``tests/engine/test_decide.py``).

Decision table (first matching row wins; S003 = seed 003, the Marketing API guide):

=============================================  =================================================================
answer                                         action
=============================================  =================================================================
transport failure before sending (connect      definite: nothing ran → ``Retry`` (any op)
refused, DNS, TLS)
transport failure after sending (timeout,      unknown → ``unknown`` row below
reset, redirect, oversized body)
exception while handling the answer            unknown (we cannot prove what happened) → ``unknown``
an async request still initial/in progress     it may still run on the server after this run gave up on its
when its set is given up (deadline, stop;      set: ``Fail`` flagged unknown (any op), never re-sent in this
``execution/async_backend.py``)                run; the set stays journaled and is read again next run
2xx entry, a create without an id              unknown: the create may exist, we cannot name it → ``unknown``
2xx entry, parent of the same batch unsettled  the child ran (so its parent exists) → ``Hold`` the success
                                               until the parent is reconciled (never marked before it)
2xx entry                                      ``Succeed``
``null`` entry (S003 §Batch Requests →         unknown → ``unknown``
Timeouts), malformed entry, missing/short
array, non-JSON answer
throttle code (4, 17, 32, 613, 80000–80014,    definite refusal (S003 §Rate Limits: the call was not made) →
2446079; HTTP 429)                             ``Park`` the scope, requeue without using an attempt; after
                                               ``max_throttle_waits`` parks → ``Fail``
auth code (190, 102, 104, 415, 457)            definite → ``StopJob`` (fail this op, send nothing more)
transient without proof: a top-level error     unknown: the request may have run before the front end or
envelope (code 1 / 2 for the whole request),   Graph answered → ``unknown`` (even when a batch parent is
HTTP 5xx without an error object, an error     unsettled: the child may have run too)
without a code
definite error while a parent of the same      the child did not run → ``Wait`` (requeued with its parent,
batch is unsettled                             no attempt used)
an entry's own transient error (1, 2, 368,     Graph's answer for that op; S003 §Handling Errors: "wait and
1404078, 2859015, 3902, 3910001,               retry" → ``Retry``
``is_transient``)
any other error (validation, permission)       definite → ``Fail`` with the Graph error
=============================================  =================================================================

The ``unknown`` row by the op's :class:`~bulk_engine.persistence.keys.Safety`: an idempotent op
(update, status, delete, read, lookup, probe) → ``Retry``; a keyed create → ``Reconcile`` (flag, back off,
look it up by key before it may be sent again); an unkeyed create (``/copies``…) → ``Fail`` with the
reason, never re-sent blind (it stays flagged unknown in the journal). When the retry budget is spent an
unknown op fails, still flagged, so the next run looks it up first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bulk_engine.persistence.keys import Safety
from bulk_engine.protocol.batch import BatchItemResult
from bulk_engine.protocol.errors import TRANSIENT_CODES, ErrorClass, GraphError

from .retry import RetryPolicy

__all__ = [
    "Action",
    "Attempts",
    "Fail",
    "HandlingFailure",
    "Hold",
    "Park",
    "Policy",
    "Reconcile",
    "Retry",
    "StillRunning",
    "StopJob",
    "Subject",
    "Succeed",
    "TransportFailure",
    "Wait",
    "decide",
    "describe",
    "not_run",
]

_DEFINITE_SUBCODES = frozenset({1404078, 2859015})  # "temporarily blocked" as subcodes (errors.py's table)
_ID_KEYS = ("id", "copied_campaign_id", "copied_adset_id", "copied_ad_id")


# --- inputs ------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Subject:
    """What is being judged: how safe it is to send again, and what its success must carry."""

    safety: Safety
    expects_id: bool = False  # a create: its success names the new object
    parent_pending: bool = False  # it references an op of the same batch that has not succeeded (yet)


LOOKUP = Subject(Safety.IDEMPOTENT)
"""Idempotency lookups and rebuild probes are reads: always safe to send again."""


@dataclass(frozen=True, slots=True)
class Attempts:
    failures: int = 0  # unsuccessful tries so far, not counting the one being judged
    throttle_waits: int = 0  # parks so far


@dataclass(frozen=True)
class Policy:
    retry: RetryPolicy
    max_throttle_waits: int


@dataclass(frozen=True, slots=True)
class TransportFailure:
    message: str
    sent: bool  # the request may have reached the server


@dataclass(frozen=True, slots=True)
class HandlingFailure:
    """An exception raised while the answer was being handled: nothing about the outcome is proven."""

    kind: str
    message: str

    @classmethod
    def of(cls, error: BaseException) -> HandlingFailure:
        return cls(type(error).__name__, str(error)[:300])


@dataclass(frozen=True, slots=True)
class StillRunning:
    """An async request set's request neither finished nor canceled when the run gave the set up (S003
    §Asynchronous and Batch Requests: a request "can only be cancelled if it is not processed yet")."""

    message: str


Answer = BatchItemResult | TransportFailure | HandlingFailure | StillRunning


# --- actions -----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Succeed:
    result: Any


@dataclass(frozen=True, slots=True)
class Hold:
    """Succeeded, but a parent of its batch is not settled: keep the result until the parent is."""

    result: Any


@dataclass(frozen=True, slots=True)
class Retry:
    delay: float
    reason: str
    unknown: bool  # the attempt's outcome was unknown (counted in the job's figures)


@dataclass(frozen=True, slots=True)
class Reconcile:
    """A keyed create's outcome is unknown: look it up by its key (after ``delay``) before any re-send."""

    delay: float
    reason: str


@dataclass(frozen=True, slots=True)
class Wait:
    """Not attempted (its batch parent did not succeed): requeue, no attempt used."""

    reason: str


@dataclass(frozen=True, slots=True)
class Park:
    """Throttled: hold ``scope`` (the BUC type Graph names, ``platform`` or ``unknown``), requeue."""

    scope: str
    reason: str
    error: GraphError | None


@dataclass(frozen=True, slots=True)
class Fail:
    reason: str
    error: GraphError | None = None
    unknown: bool = False  # it may exist: the journal keeps it flagged for a lookup on the next run
    # the last attempt's outcome was unknown, so it may have been carried out (also when an idempotent op,
    # never looked up, is not flagged ``unknown``): the outcome says so (``Outcome.unknown``)
    maybe_ran: bool = False


@dataclass(frozen=True, slots=True)
class StopJob:
    """Fail this op and send nothing more: retrying with the same token cannot succeed."""

    reason: str
    error: GraphError | None


Action = Succeed | Hold | Retry | Reconcile | Wait | Park | Fail | StopJob


def not_run(action: Action) -> bool:
    """Whether the judged answer proves the op was not carried out though it goes on: throttled (``Park``),
    held back by its batch parent (``Wait``) or refused as documented and retried (a definite ``Retry``).

    Why: such an op is re-sent without a lookup in this run, so a later run must not look it up either —
    its intent, journaled as "may have run", is cleared (``RunSession.not_sent``). Terminal actions record
    their own verdict; a lookup's answer says nothing about the op itself and never clears it.
    """
    return isinstance(action, Park | Wait) or (isinstance(action, Retry) and not action.unknown)


# --- the decision ------------------------------------------------------------------------------------
def decide(subject: Subject, answer: Answer, attempts: Attempts, policy: Policy) -> Action:
    """Judge one answer for one op (see the module table). Total: any input gives an action."""
    if isinstance(answer, TransportFailure):
        reason = f"transport: {answer.message}"
        if not answer.sent:
            return _retry(subject, attempts, policy, reason, unknown=False)
        return _unknown(subject, attempts, policy, reason)
    if isinstance(answer, HandlingFailure):
        reason = f"unexpected {answer.kind} while handling the answer: {answer.message}"
        return _unknown(subject, attempts, policy, reason)
    if isinstance(answer, StillRunning):  # re-sending now could run it twice, whatever its safety
        return Fail(
            f"outcome unknown: {answer.message}, so it may still run on the server; not sent again in this run "
            "(the next run reads its set again, or looks it up by its idempotency key, first)",
            unknown=True,
        )
    return _judge_entry(subject, answer, attempts, policy)


def _judge_entry(subject: Subject, item: BatchItemResult, attempts: Attempts, policy: Policy) -> Action:
    if item.outcome_unknown:
        return _unknown(subject, attempts, policy, describe(item))
    verdict = item.error_class
    if verdict is ErrorClass.OK:
        if subject.expects_id and not _names_object(item.body):
            reason = f"HTTP {item.status} without the id of the created object"
            return _unknown(subject, attempts, policy, reason)
        return Hold(item.body) if subject.parent_pending else Succeed(item.body)
    error = item.error
    if verdict is ErrorClass.THROTTLED:
        if attempts.throttle_waits >= policy.max_throttle_waits:
            return Fail(f"still throttled after {attempts.throttle_waits} waits: {describe(item)}", error)
        return Park(_scope(error), describe(item), error)
    if verdict is ErrorClass.AUTH:
        code = error.code if error is not None and error.code is not None else item.status
        return StopJob(f"access token rejected (code {code}): {describe(item)}", error)
    if verdict is ErrorClass.TRANSIENT and not _definitely_refused(item, error):
        # It may have run (so may its batch parent): looked up before it is sent again, even when its
        # parent is still being reconciled.
        return _unknown(subject, attempts, policy, describe(item), error)
    if subject.parent_pending:
        return Wait(f"its parent in the batch did not succeed: {describe(item)}")
    if verdict is ErrorClass.TRANSIENT:
        return _retry(subject, attempts, policy, describe(item), unknown=False, error=error)
    return Fail(describe(item), error)


def _definitely_refused(item: BatchItemResult, error: GraphError | None) -> bool:
    """A transient answer that proves the op was not carried out.

    An entry's own error object is Graph's answer for that op, and S003 §Handling Errors documents the
    transient codes (1, 2, 368, …) as "wait and retry": retried as documented. A top-level envelope (the
    whole request, possibly after its ops ran), an HTTP 5xx without an error object, or an error without
    a code prove nothing.
    """
    if error is None or item.from_envelope or error.code is None:
        return False
    code: int | None = error.code
    subcode: int | None = error.error_subcode
    if code is not None and code < 0:  # negative codes are internal: the subcode is the code (errors.py)
        code, subcode = subcode, None
    if code is None:
        return False
    return code in TRANSIENT_CODES or subcode in _DEFINITE_SUBCODES or error.is_transient is True


def _names_object(body: Any) -> bool:
    if not isinstance(body, dict):
        return False
    for key in _ID_KEYS:
        value = body.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return True
    return False


def _scope(error: GraphError | None) -> str:
    scope = error.throttle_scope if error is not None else None
    return str(scope) if scope is not None else "unknown"


def _retry(
    subject: Subject,
    attempts: Attempts,
    policy: Policy,
    reason: str,
    *,
    unknown: bool,
    error: GraphError | None = None,
) -> Action:
    failures = attempts.failures + 1
    if not policy.retry.should_retry(failures):
        keyed_unknown = unknown and subject.safety is not Safety.IDEMPOTENT
        return Fail(
            f"gave up after {failures} attempts: {reason}", error, unknown=keyed_unknown, maybe_ran=unknown
        )
    return Retry(policy.retry.delay(failures), reason, unknown)


def _unknown(
    subject: Subject, attempts: Attempts, policy: Policy, reason: str, error: GraphError | None = None
) -> Action:
    if subject.safety is Safety.IDEMPOTENT:
        return _retry(subject, attempts, policy, reason, unknown=True, error=error)
    if subject.safety is Safety.UNKEYED:
        return Fail(
            f"outcome unknown ({reason}) and this operation carries no idempotency key: not sent again so as "
            "not to create a duplicate (check the account, then re-run it)",
            error,
            unknown=True,
        )
    failures = attempts.failures + 1
    if not policy.retry.should_retry(failures):
        return Fail(
            f"outcome still unknown after {failures} attempts ({reason}); it is looked up by its idempotency "
            "key before it is sent again when the job runs again",
            error,
            unknown=True,
        )
    return Reconcile(policy.retry.delay(failures), reason)


def describe(item: BatchItemResult) -> str:
    """One line for a batch entry, for reasons and logs (never the request, so never the token)."""
    if item.is_null:
        return "batch entry was null (partial timeout)"
    if item.malformed:
        return f"malformed batch entry: {item.malformed}"
    err = item.error
    where = "batch request rejected: " if item.from_envelope else ""
    if err is None:
        return f"{where}HTTP {item.status}"
    sub = f"/{err.error_subcode}" if err.error_subcode else ""
    return f"{where}Graph error {err.code}{sub}: {err.message[:500]}"
