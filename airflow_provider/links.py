"""The "Ads Manager" extra link: the campaigns a task created, opened in Meta's Ads Manager.

Airflow 3 asks each link for its URL on the worker when the task ends and keeps the answer as an XCom, so the
operator only has to remember the URL (:attr:`MetaOperatorBase.ads_manager_url`). The link exists only when
the connection talks to Meta (``graph.facebook.com``): a simulator's ids mean nothing to Ads Manager.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from airflow.sdk import BaseOperatorLink

from bulk_engine import Outcome, OutcomeState

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

ADS_MANAGER = "https://adsmanager.facebook.com/adsmanager/manage/campaigns"
META_HOSTS = ("facebook.com",)
MAX_IDS = 100  # a URL stays a few KB; the report lists every campaign

__all__ = ["AdsManagerLink", "ads_manager_url", "created_campaigns"]


class AdsManagerLink(BaseOperatorLink):
    """Ads Manager, with the campaigns the task created (or copied) selected."""

    name = "Ads Manager"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return str(getattr(operator, "ads_manager_url", "") or "")


def created_campaigns(outcomes: Iterable[Outcome]) -> dict[str, list[str]]:
    """Ad account → ids of the campaigns created or copied (in order)."""
    found: dict[str, list[str]] = {}
    for outcome in outcomes:
        if outcome.state is not OutcomeState.SUCCEEDED or not isinstance(outcome.result, dict):
            continue
        result: dict[str, Any] = outcome.result
        campaign = None
        if outcome.kind == "create_campaign":
            campaign = result.get("id")
        elif outcome.kind in ("copy", "migrate"):
            campaign = result.get("copied_campaign_id")
        if campaign:
            found.setdefault(outcome.account_id, []).append(str(campaign))
    return found


def ads_manager_url(graph_url: str, outcomes: Iterable[Outcome]) -> str:
    """The Ads Manager URL of the account with most new campaigns ("" off Meta or with none)."""
    host = urlsplit(graph_url).hostname or ""
    if not any(host == h or host.endswith("." + h) for h in META_HOSTS):
        return ""
    campaigns = created_campaigns(outcomes)
    if not campaigns:
        return ""
    account = max(campaigns, key=lambda a: len(campaigns[a]))
    ids = campaigns[account][:MAX_IDS]
    query = urlencode({"act": account.removeprefix("act_"), "selected_campaign_ids": ",".join(ids)})
    return f"{ADS_MANAGER}?{query}"
