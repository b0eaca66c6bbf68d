"""Marketing messages (seed 004): message campaign, sends from a CSV, the 12-hour rule, tracking ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ops_support import PAGE, write

from bulk_engine.operations import CompileContext, MessagesTask, load_job, send_messages

NOW = 2_000_000_000.0
HISTORY = {"tok-recent": NOW - 3600.0, "tok-old": NOW - 13 * 3600.0}


async def test_campaign_and_sends_from_csv_respect_the_12_hour_rule(start_sim: Any, tmp_path: Path) -> None:
    sim = await start_sim()
    write(tmp_path / "subscribers.csv", "subscription_token\ntok-1\ntok-2\ntok-1\ntok-recent\ntok-old\n")
    job = write(
        tmp_path / "messages.yaml",
        f"""\
account_id: {sim.act}
tasks:
  - type: messages
    key: spring
    campaign: {{name: Spring sale, page_id: "{PAGE}", daily_budget: 500}}
    message: {{text: "Our spring sale starts today"}}
    csv: subscribers.csv
""",
    )
    ctx = CompileContext(now=lambda: NOW, last_message_sent=HISTORY.get)
    report = await sim.run(load_job(job), ctx)
    states = {o.op_id: (o.state.value, o.reason) for o in report.outcomes}
    assert states["spring/campaign"][0] == "succeeded"
    assert states["spring/send/L2"][0] == "succeeded"
    assert states["spring/send/L3"][0] == "succeeded"
    assert states["spring/send/L4"] == (
        "skipped",
        "12-hour rule: this token gets a message earlier in this job",
    )
    assert states["spring/send/L5"][0] == "skipped" and "next allowed at 2033-05-18T14:33:20+00:00" in str(
        states["spring/send/L5"][1]
    )
    assert states["spring/send/L6"][0] == "succeeded"
    details = report.task("spring").details
    assert details["sent"] == 3 and len(set(details["tracking_ids"].values())) == 3
    campaign_id = details["message_campaign_id"]
    node = sim.node(campaign_id)
    assert node.data["daily_budget"] == "500" and node.data["page_id"] == PAGE
    messages = sim.children(campaign_id, "ad")
    assert sorted(m.data["messenger_delivery_data"]["subscription_token"] for m in messages) == [
        "tok-1",
        "tok-2",
        "tok-old",
    ]
    assert {m.data["marketing_message_tracking_id"] for m in messages} == set(
        details["tracking_ids"].values()
    )


async def test_without_history_graph_refuses_the_second_message(start_sim: Any) -> None:
    """Without a journal the local check cannot know; Graph's refusal (10/2018278) is reported per token."""
    sim = await start_sim()
    first = MessagesTask(
        type="messages",
        campaign={"name": "M", "page_id": PAGE, "lifetime_budget": 5000},
        message="Hello",
        subscription_tokens=["a", "b"],
    )
    async with sim.engine() as engine:
        sent = await send_messages(engine, first, account_id=sim.act)
        assert sent.details["sent"] == 2
        again = MessagesTask(
            type="messages",
            campaign_id=sent.details["message_campaign_id"],
            message="Again",
            subscription_tokens=["a", "c"],
        )
        second = await send_messages(engine, again, account_id=sim.act)
    refused = next(o for o in second.outcomes if o.op_id == "t0/send/0")
    assert refused.state.value == "failed"
    assert refused.error is not None and (refused.error.code, refused.error.error_subcode) == (10, 2018278)
    assert second.details["sent"] == 1


async def test_messages_dry_run_reads_applies_the_12_hour_rule_and_sends_nothing(start_sim: Any) -> None:
    sim = await start_sim()
    task = {
        "type": "messages",
        "key": "m",
        "campaign_id": "123",
        "message": "Hi",
        "subscription_tokens": ["a", "tok-recent", "a", "tok-old"],
    }
    ctx = CompileContext(validate_only=True, now=lambda: NOW, last_message_sent=HISTORY.get)
    report = await sim.run({"tasks": [task]}, ctx)
    details = report.task("m").details
    assert details["campaign"]["found"] is False and details["campaign"]["reason"]  # read, not there
    assert (details["would_send"], details["held_by_12_hour_rule"]) == (2, 2)
    reasons = {o.op_id: o.reason or "" for o in report.outcomes if o.op_id.startswith("m/send/")}
    assert all(o.state.value == "skipped" for o in report.outcomes if o.op_id.startswith("m/send/"))
    assert reasons["m/send/0"].startswith("dry run: would be sent")
    assert reasons["m/send/1"].startswith("12-hour rule") and reasons["m/send/2"].startswith("12-hour rule")
    assert reasons["m/send/3"].startswith("dry run")
    assert [c.method for c in sim.server.core.calls] == ["GET"]  # the campaign read; no write


async def test_messages_dry_run_with_a_new_campaign_plans_it(start_sim: Any) -> None:
    sim = await start_sim()
    task = {
        "type": "messages",
        "key": "m",
        "campaign": {"name": "Spring", "page_id": PAGE, "daily_budget": 500},
        "message": "Hi",
        "subscription_tokens": ["a"],
    }
    report = await sim.run({"tasks": [task]}, CompileContext(validate_only=True))
    assert "would be created" in (report.outcome("m/campaign").reason or "")
    assert report.task("m").details["would_send"] == 1
    assert sim.server.core.calls == []
