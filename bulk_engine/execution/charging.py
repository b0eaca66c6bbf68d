"""Which business use case (BUC) each operation is charged to, so the governor paces the right window.

S003 §Business Use Case Rate Limits: every call counts against the quota of its use case for the ad account,
and ``X-Business-Use-Case-Usage`` names the types the account has used. An operation's type is declared by
what it does (reads of ``insights`` → ``ads_insights``; creates, updates, copies and reads of ad objects →
``ads_management``) and corrected by the headers: when the answer to a batch reports exactly one type for
the account and it is not the one charged (marketing messages, say, are counted as whatever Meta counts
them as), operations of the same kind are charged to the reported type from then on.
"""

from __future__ import annotations

from collections.abc import Sequence

from bulk_engine.planning.graph import Operation
from bulk_engine.protocol.usage import BucType, UsageSnapshot, normalize_account_id

READS_OF_AD_OBJECTS = BucType.ADS_MANAGEMENT.value
"""The BUC of the engine's own reads (idempotency lookups, rebuild probes) and of an account with nothing ready."""


def _family(op: Operation) -> str:
    """``"POST messages"``, ``"GET insights"``: the method and the last literal part of the path."""
    last = ""
    for part in reversed(op.path_parts):
        if isinstance(part, str):
            last = part.rstrip("/").rsplit("/", 1)[-1]
            break
    return f"{op.method} {last}"


class Charges:
    """The BUC type of each operation: declared, then learnt from the headers (one instance per run)."""

    def __init__(self) -> None:
        self._learned: dict[str, str] = {}

    def of(self, op: Operation) -> str:
        family = _family(op)
        learned = self._learned.get(family)
        if learned is not None:
            return learned
        if op.method == "GET" and family.endswith(" insights"):
            return BucType.ADS_INSIGHTS.value
        return BucType.ADS_MANAGEMENT.value

    def of_batch(self, ops: Sequence[Operation]) -> str:
        """A batch is paced as one: the type of its first operation (the batcher packs per account)."""
        return self.of(ops[0]) if ops else READS_OF_AD_OBJECTS

    def learn(self, ops: Sequence[Operation], account_id: str, usage: UsageSnapshot, charged: str) -> None:
        """The answer to ``ops`` (charged to ``charged``) reported ``usage`` for ``account_id``."""
        account = normalize_account_id(account_id)
        types = {entry.type for entry in usage.buc if entry.object_id == account}
        if len(types) != 1 or charged in types:
            return
        (reported,) = types
        for op in ops:
            self._learned[_family(op)] = reported
