"""Marketing messages on Messenger (seed 004): a message campaign and sends to a subscriber list.

- ``POST /act_<id>/message_campaign`` ``{name, page_id, daily_budget | lifetime_budget}`` (cents; exactly one;
  lifetime minimum "$30" for a 100-cent daily minimum [inference, as in the simulator]) → ``{"id"}``; or an
  existing ``campaign_id``.
- ``POST /act_<id>/messages`` ``{message_id: <campaign id>, messenger_delivery_data: {subscription_token},
  message}`` → ``{"success": true, "marketing_message_tracking_id"}`` per subscriber, from ``subscription_tokens``
  or a CSV (header ``subscription_token`` or a bare list), streamed.
- **12 hours between two messages to one token** ("delay subsequent messages by at least 12 hours"): a token
  that received a message less than 12 hours ago according to :attr:`CompileContext.last_message_sent` (the
  journal), or that appears twice in the job, is reported ``skipped`` with the time it may be messaged again
  and costs no call. Each send's ``marketing_message_tracking_id`` is in its outcome's result (and in the
  task's ``details``).

Op ids: ``<task>/campaign``, ``<task>/send/<i>`` (inline list) or ``<task>/send/L<line>`` (CSV row).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from bulk_engine.planning.graph import Operation, OpKind
from bulk_engine.protocol.catalog import MIN_DAILY_BUDGET
from bulk_engine.protocol.refs import Ref
from bulk_engine.results import OutcomeState

from .base import EngineLike, Issue, TaskEnv
from .csvinput import CsvError, count_rows, csv_issue, is_file, iter_rows
from .reads import read_nodes
from .rules import RULES
from .specs import job_model_config
from .task import TaskBase, TaskReport

__all__ = ["MESSAGE_INTERVAL_S", "MessageCampaignSpec", "MessagesTask"]

MESSAGE_INTERVAL_S = 12 * 3600.0
MIN_LIFETIME_BUDGET = 30 * MIN_DAILY_BUDGET
TOKEN_COLUMN = "subscription_token"


class MessageCampaignSpec(BaseModel):
    """``POST /act_<id>/message_campaign`` (S004): "similar to a combination of the campaigns and adsets"."""

    model_config = job_model_config("MessageCampaign")

    name: str = Field(min_length=1, max_length=400)
    page_id: str = Field(pattern=r"^\d+$")
    daily_budget: int | None = Field(None, ge=0, description="In cents")
    lifetime_budget: int | None = Field(None, ge=0, description="In cents")

    def to_params(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class MessagesTask(TaskBase):
    """Send a marketing message to every subscription token (see the module docstring)."""

    model_config = job_model_config("MessagesTask")

    type: Literal["messages"]
    campaign: MessageCampaignSpec | None = Field(None, description="Create this message campaign first")
    campaign_id: str | None = Field(None, description="…or send through an existing message campaign")
    message: str | dict[str, Any] = Field(description="The message (text or a structured message object)")
    subscription_tokens: list[str] = Field(default_factory=list)
    csv: str | None = Field(
        None, description="CSV of subscription tokens (header subscription_token, or bare)"
    )
    min_interval_hours: float = Field(
        12.0, ge=12.0, description="Hours between two messages to one token (≥ 12)"
    )

    def input_files(self) -> list[str]:
        return [self.csv] if self.csv else []

    @property
    def supports_validate_only(self) -> bool:
        return False

    def rule_issues(self) -> Iterator[Issue]:
        if (self.campaign is None) == (self.campaign_id is None):
            yield Issue(
                ("campaign",),
                "give exactly one of campaign (to create) or campaign_id",
                None,
                "messages.campaign",
                has_value=False,
            )
        if self.campaign is not None:
            budgets = [
                k for k in ("daily_budget", "lifetime_budget") if getattr(self.campaign, k) is not None
            ]
            if len(budgets) != 1:
                yield Issue(
                    ("campaign", "daily_budget"),
                    "a message campaign needs exactly one of daily_budget or lifetime_budget",
                    None,
                    "messages.budget",
                    100,
                    has_value=False,
                )
            for key, minimum in (
                ("daily_budget", MIN_DAILY_BUDGET),
                ("lifetime_budget", MIN_LIFETIME_BUDGET),
            ):
                value = getattr(self.campaign, key)
                if value is not None and value < minimum:
                    rule = RULES["budget.too_low"]
                    yield Issue(
                        ("campaign", key),
                        f"budget too low: at least {minimum} cents",
                        value,
                        "budget.too_low",
                        rule.code,
                        rule.subcode,
                    )
        if self.campaign_id is not None and not self.campaign_id.isdigit():
            yield Issue(("campaign_id",), "must be a numeric id", self.campaign_id, "messages.campaign")
        if bool(self.subscription_tokens) == bool(self.csv):
            yield Issue(
                ("subscription_tokens",),
                "give exactly one of subscription_tokens or csv",
                None,
                "messages.tokens",
                has_value=False,
            )
        for i, token in enumerate(self.subscription_tokens):
            if not token.strip():
                yield Issue(("subscription_tokens", i), "empty subscription token", token, "messages.token")
        if isinstance(self.message, str) and not self.message.strip():
            yield Issue(("message",), "empty message", self.message, "messages.message")

    def input_issues(self, base_dir: Path) -> Iterator[Issue]:
        if not self.csv:
            return
        path = Path(self.csv) if Path(self.csv).is_absolute() else base_dir / self.csv
        if not is_file(path):
            yield Issue(("csv",), f"CSV file not found: {path}", self.csv, "csv.missing")
            return
        empty = True
        try:
            for row in iter_rows(path, TOKEN_COLUMN):
                empty = False
                if not row.values.get(TOKEN_COLUMN):
                    yield Issue(
                        ("csv",),
                        "row without a subscription token",
                        row.values,
                        "csv.row",
                        file=str(path),
                        line=row.line,
                    )
                    return
        except (CsvError, OSError) as err:
            yield csv_issue(err, path)
            return
        if empty:
            yield Issue(("csv",), "the CSV has no subscription tokens", self.csv, "csv.empty")

    def _tokens(self, env: TaskEnv) -> Iterator[tuple[str, str]]:
        if self.csv:
            for row in iter_rows(env.resolve(self.csv), TOKEN_COLUMN):
                yield f"L{row.line}", row.values[TOKEN_COLUMN]
        else:
            for i, token in enumerate(self.subscription_tokens):
                yield str(i), token.strip()

    def compile(self, env: TaskEnv) -> Iterator[Operation]:
        act = env.account_id
        message_id: str | Ref
        if self.campaign is not None:
            campaign_op = env.op_id("campaign")
            yield Operation(
                op_id=campaign_op,
                method="POST",
                path=f"{act}/message_campaign",
                params=self.campaign.to_params(),
                account_id=act,
                kind=OpKind.CREATE_OTHER,
            )
            message_id = Ref(campaign_op)
        else:
            message_id = str(self.campaign_id)
        interval = self.min_interval_hours * 3600.0
        now = env.ctx.now()
        seen: set[str] = set()
        for suffix, token in self._tokens(env):
            op_id = env.op_id("send", suffix)
            if token in seen:
                env.ctx.skip(
                    op_id,
                    act,
                    OpKind.CREATE_OTHER.value,
                    "12-hour rule: this token gets a message earlier in this job",
                )
                continue
            seen.add(token)
            last = env.ctx.last_message_sent(token)
            if last is not None and now - last < interval:
                again = _dt.datetime.fromtimestamp(last + interval, _dt.UTC).isoformat(timespec="seconds")
                env.ctx.skip(
                    op_id,
                    act,
                    OpKind.CREATE_OTHER.value,
                    f"12-hour rule: this token was messaged less than {self.min_interval_hours:g} hours ago; "
                    f"next allowed at {again}",
                )
                continue
            yield Operation(
                op_id=op_id,
                method="POST",
                path=f"{act}/messages",
                params={
                    "message_id": message_id,
                    "messenger_delivery_data": {"subscription_token": token},
                    "message": self.message,
                },
                account_id=act,
                kind=OpKind.CREATE_OTHER,
            )

    def estimate(self, env: TaskEnv) -> dict[str, int]:
        sends = count_rows(env.resolve(self.csv), TOKEN_COLUMN) if self.csv else len(self.subscription_tokens)
        return {OpKind.CREATE_OTHER.value: sends + (1 if self.campaign is not None else 0)}

    async def execute(self, engine: EngineLike, env: TaskEnv) -> TaskReport:
        if env.ctx.validate_only:
            return await self._dry_run(engine, env)
        report = await super().execute(engine, env)
        campaign_id = self.campaign_id
        sent: dict[str, str] = {}
        for outcome in report.outcomes:
            if outcome.state is not OutcomeState.SUCCEEDED or not isinstance(outcome.result, dict):
                continue
            if outcome.op_id == env.op_id("campaign"):
                campaign_id = str(outcome.result.get("id"))
            elif outcome.result.get("marketing_message_tracking_id"):
                sent[outcome.op_id] = str(outcome.result["marketing_message_tracking_id"])
        report.details["message_campaign_id"] = campaign_id
        report.details["sent"] = len(sent)
        report.details["tracking_ids"] = sent
        return report

    async def _dry_run(self, engine: EngineLike, env: TaskEnv) -> TaskReport:
        """Graph has no dry run for ``/message_campaign`` or ``/messages``: read the existing campaign, apply
        the 12-hour rule and the in-job duplicates (from the journal, as a real run would), and report every
        send as ``skipped`` with what would happen. No write is sent."""
        report = TaskReport.for_env(env, "messages")
        if self.campaign_id is not None:
            found = await read_nodes(
                engine, [self.campaign_id], "id,name", env.account_id, report, op_prefix=env.op_id("read")
            )
            error = found.errors.get(self.campaign_id)
            report.details["campaign"] = (
                {"id": self.campaign_id, "found": True}
                if self.campaign_id in found.items
                else {"id": self.campaign_id, "found": False, "reason": error.reason if error else None}
            )
        would_send = 0
        for op in self.compile(env):
            if op.op_id == env.op_id("campaign"):
                reason = (
                    f"dry run: the message campaign {self.campaign.name!r} would be created"
                    if self.campaign
                    else ""
                )
            else:
                would_send += 1
                reason = "dry run: would be sent (Graph has no validate_only for /messages)"
            env.ctx.skip(op.op_id, op.account_id, op.kind.value, reason)
        held = len(env.ctx.skipped) - would_send - (1 if self.campaign is not None else 0)
        for outcome in env.ctx.skipped:
            report.add(outcome)
        env.ctx.skipped.clear()
        report.details["validate_only"] = "read and checked locally; nothing sent"
        report.details["would_send"] = would_send
        report.details["held_by_12_hour_rule"] = held
        return report
