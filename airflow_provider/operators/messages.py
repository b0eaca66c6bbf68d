"""``MetaMarketingMessagesOperator``: send a Messenger marketing message to a subscriber list."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bulk_engine.operations import JobReport

from .job import MetaTaskOperator, as_list, as_mapping


class MetaMarketingMessagesOperator(MetaTaskOperator):
    """Send one marketing message to many subscribers (a ``type: messages`` task).

    :param message: the message (text, or a structured message object). Templated.
    :param subscription_tokens: the subscribers (list, JSON text or comma-separated). Templated.
    :param csv: …or a CSV of tokens (header ``subscription_token``, or one token a line). Templated.
    :param campaign: create this message campaign first: ``{"name", "page_id", "daily_budget" |
        "lifetime_budget"}`` (cents). Templated.
    :param campaign_id: …or send through an existing message campaign. Templated.
    :param min_interval_hours: hours between two messages to one token (at least 12, Meta's rule); tokens
        listed twice are skipped without a call.

    Sends carry no idempotency key: keep the journal (``journal_path``) where retries run so a retry does
    not message anyone twice. The XCom summary adds ``message_campaign_id`` and ``sent``.
    """

    task_type = "messages"
    template_fields: Sequence[str] = (
        "meta_conn_id",
        "message",
        "subscription_tokens",
        "csv",
        "campaign",
        "campaign_id",
        "account_id",
        "report_path",
        "journal_path",
    )
    template_fields_renderers = {"campaign": "json"}

    def __init__(
        self,
        *,
        message: str | Mapping[str, Any],
        subscription_tokens: Sequence[str] | str | None = None,
        csv: str | None = None,
        campaign: Mapping[str, Any] | str | None = None,
        campaign_id: str | None = None,
        min_interval_hours: float = 12.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.message = message
        self.subscription_tokens = subscription_tokens
        self.csv = csv
        self.campaign = campaign
        self.campaign_id = campaign_id
        self.min_interval_hours = min_interval_hours

    def task_fields(self) -> dict[str, Any]:
        message: Any = self.message
        if isinstance(message, str) and message.lstrip().startswith("{"):
            message = as_mapping(message)
        return {
            "message": message,
            "subscription_tokens": as_list(self.subscription_tokens),
            "csv": self.csv,
            "campaign": as_mapping(self.campaign),
            "campaign_id": self.campaign_id or None,
            "min_interval_hours": self.min_interval_hours,
        }

    def summarize(self, report: JobReport) -> dict[str, Any]:
        details = report.tasks[0].details if report.tasks else {}
        return {"message_campaign_id": details.get("message_campaign_id"), "sent": details.get("sent", 0)}
