"""Job-file fuzzing shared by the fuzz tests: strategies, the hostile corpus, and the real CLI entry point.

A uniquely named module (test folders share one import namespace). Everything a case needs is generated at
test time; files are run through ``bulk_engine.cli.main`` in-process, with stdout and stderr captured.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from bulk_engine import cli

PAGE = "2000000001"

# --- a valid job touching every task kind and the rules' nested shapes ------------------------------------
CTA = {"type": "MESSAGE_PAGE", "value": {"app_destination": "MESSENGER"}}
RICH_JOB: dict[str, Any] = {
    "version": 1,
    "job_id": "fuzz",
    "account_id": "act_1000000001",
    "tasks": [
        {
            "type": "create",
            "key": "tree",
            "creatives": {
                "hero": {
                    "object_story_spec": {
                        "page_id": PAGE,
                        "link_data": {"link": "https://example.com", "message": "Hi", "call_to_action": CTA},
                    },
                    "page_welcome_message": {
                        "type": "VISUAL_EDITOR",
                        "landing_screen_type": "welcome_message",
                        "ice_breakers": [{"title": "Hello?", "response": "Hi!"}],
                        "message": {"text": "Welcome"},
                    },
                },
                "feed": {
                    "object_story_spec": {"page_id": PAGE},
                    "asset_feed_spec": {
                        "optimization_type": "DOF_MESSAGING_DESTINATION",
                        "call_to_actions": [
                            {"type": "MESSAGE_PAGE", "value": {"app_destination": "MESSENGER"}},
                            {"type": "WHATSAPP_MESSAGE", "value": {"app_destination": "WHATSAPP"}},
                        ],
                        "bodies": [{"text": "A"}, {"text": "B"}],
                        "images": [{"hash": "abc"}],
                        "ad_formats": ["SINGLE_IMAGE"],
                    },
                },
            },
            "campaigns": [
                {
                    "name": "Msg {n}",
                    "objective": "OUTCOME_ENGAGEMENT",
                    "special_ad_categories": [],
                    "repeat": 2,
                    "ad_sets": [
                        {
                            "name": "Messenger",
                            "billing_event": "IMPRESSIONS",
                            "optimization_goal": "CONVERSATIONS",
                            "destination_type": "MESSENGER",
                            "daily_budget": 1000,
                            "start_time": "2026-03-01T00:00:00-0800",
                            "end_time": "2026-04-01T00:00:00-0800",
                            "bid_strategy": "LOWEST_COST_WITH_BID_CAP",
                            "bid_amount": 100,
                            "bid_constraints": {"roas_average_floor": 100},
                            "targeting": {"geo_locations": {"countries": ["US"]}, "age_min": 18},
                            "promoted_object": {"page_id": PAGE},
                            "ads": [
                                {"name": "A", "creative": "hero"},
                                {
                                    "name": "B",
                                    "creative_spec": {
                                        "object_story_spec": {
                                            "page_id": PAGE,
                                            "link_data": {
                                                "link": "https://example.com",
                                                "call_to_action": CTA,
                                            },
                                        }
                                    },
                                },
                            ],
                        }
                    ],
                    "ad_set_matrix": {
                        "template": {
                            "billing_event": "IMPRESSIONS",
                            "optimization_goal": "LINK_CLICKS",
                            "daily_budget": 1500,
                        },
                        "audiences": [{"name": "US", "targeting": {"geo_locations": {"countries": ["US"]}}}],
                        "creatives": ["hero"],
                        "ad_params": {"tracking_specs": [{"action.type": ["offsite_conversion"]}]},
                    },
                }
            ],
        },
        {"type": "status", "status": "PAUSED", "ids": ["1", "2"], "level": "campaign"},
        {
            "type": "status",
            "status": "ARCHIVED",
            "selector": {"level": "adset", "name_regex": "^Old", "effective_status": ["PAUSED"]},
        },
        {
            "type": "copy",
            "source_ids": ["11"],
            "rename_options": {"rename_strategy": "DEEP_RENAME", "rename_prefix": "[Q3] "},
        },
        {"type": "copy", "source_ids": ["12"], "target_account_id": "act_2", "video_map": {"1": "2"}},
        {"type": "migrate", "campaign_ids": ["13"], "mode": "copy", "readiness": "apply"},
        {
            "type": "messages",
            "campaign": {"name": "M", "page_id": PAGE, "daily_budget": 500},
            "message": {"text": "Hi"},
            "subscription_tokens": ["tok-1", "tok-2"],
        },
        {
            "type": "operations",
            "operations": [
                {"op_id": "c", "path": "{account_id}/campaigns", "params": {"name": "Raw"}},
                {"op_id": "u", "path": {"$ref": "c"}, "params": {"status": "PAUSED", "x": {"$ref": "c"}}},
            ],
        },
    ],
}

# Words the rules branch on, so random values reach past the schema more often than pure noise would.
WORDS = [
    "MESSAGE_PAGE",
    "WHATSAPP_MESSAGE",
    "INSTAGRAM_MESSAGE",
    "MESSENGER",
    "WHATSAPP",
    "INSTAGRAM_DIRECT",
    "MESSAGING_MESSENGER_WHATSAPP",
    "DOF_MESSAGING_DESTINATION",
    "OUTCOME_TRAFFIC",
    "OUTCOME_ENGAGEMENT",
    "OUTCOME_SALES",
    "OUTCOME_LEADS",
    "IMPRESSIONS",
    "LINK_CLICKS",
    "CONVERSATIONS",
    "LEAD_GENERATION",
    "LOWEST_COST_WITH_BID_CAP",
    "LOWEST_COST_WITH_MIN_ROAS",
    "COST_CAP",
    "ACTIVE",
    "PAUSED",
    "ARCHIVED",
    "DELETED",
    "NONE",
    "WEBSITE",
    "campaign",
    "adset",
    "ad",
    "hero",
    "feed",
    "act_1",
    "123",
    "1_2",
    "2026-03-01T00:00:00Z",
    "0",
    "{n}",
    "{nope}",
    "$ref",
    "$.id",
    "c",
    "",
    " ",
    "x" * 500,
]

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(WORDS)
    | st.integers(-(10**6), 10**6).map(str)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=12) | st.sampled_from(WORDS), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*path, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _paths(child, (*path, i))


RICH_PATHS = list(_paths(RICH_JOB))


def _mutate(data: Any, path: tuple[Any, ...], action: str, value: Any) -> Any:
    if not path:
        return value if action != "delete" else {}
    holder = data
    for part in path[:-1]:
        holder = holder[part]
    last = path[-1]
    current = holder[last]
    if action == "delete":
        del holder[last]
    elif action == "set":
        holder[last] = value
    elif action == "wrap":
        holder[last] = [current]
    elif action == "box":
        holder[last] = {"value": current}
    elif action == "stringify":
        holder[last] = json.dumps(current)
    elif action == "add" and isinstance(current, dict):
        current[value if isinstance(value, str) else "extra"] = value
    elif action == "add" and isinstance(current, list):
        current.append(value)
    else:
        holder[last] = value
    return data


@st.composite
def mutated_jobs(draw: st.DrawFn) -> Any:
    """The rich valid job with 1–4 random nodes deleted, replaced, retyped or extended."""
    data: Any = copy.deepcopy(RICH_JOB)
    for _ in range(draw(st.integers(1, 4))):
        paths = list(_paths(data))
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["delete", "set", "wrap", "box", "stringify", "add"]))
        data = _mutate(data, path, action, draw(JSON_VALUES))
    return data


TASK_FIELDS: dict[str, list[str]] = {}


def _task_fields() -> dict[str, list[str]]:
    from bulk_engine.operations.jobfile import JobSpec

    if not TASK_FIELDS:
        schema = JobSpec.model_json_schema()
        for name, model in schema["$defs"].items():
            TASK_FIELDS[name] = sorted(model.get("properties", {}))
    return TASK_FIELDS


@st.composite
def shaped_jobs(draw: st.DrawFn) -> Any:
    """Job-shaped trees: real task types and field names (of any model), random values of every JSON type."""
    fields = _task_fields()
    names = sorted({f for group in fields.values() for f in group})
    tasks = []
    for _ in range(draw(st.integers(0, 3))):
        task: dict[str, Any] = {
            "type": draw(st.sampled_from(["create", "status", "copy", "migrate", "messages", "operations"]))
        }
        for field in draw(st.lists(st.sampled_from(names), max_size=6)):
            task[field] = draw(JSON_VALUES)
        tasks.append(task)
    job: dict[str, Any] = {"tasks": tasks}
    if draw(st.booleans()):
        job["account_id"] = draw(st.sampled_from(["act_1", "act_x", 1]))
    if draw(st.booleans()):
        job["version"] = draw(SCALARS)
    return job


def serialise(data: Any, fmt: str) -> bytes | None:
    """``data`` as a YAML or JSON file's bytes (``None`` when that format cannot carry it)."""
    try:
        if fmt == "json":
            return json.dumps(data, ensure_ascii=False).encode("utf-8", "surrogatepass")
        if fmt == "json-ascii":
            return json.dumps(data).encode()
        return yaml.safe_dump(data, allow_unicode=True, sort_keys=False).encode("utf-8")
    except (UnicodeEncodeError, ValueError, yaml.YAMLError):
        return None


# --- the CLI, in-process ------------------------------------------------------------------------------------
@dataclass
class CliResult:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def run_main(*argv: str) -> CliResult:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return CliResult(code, out.getvalue(), err.getvalue())


class CountingServer:
    """A loopback TCP server that only counts the connections it accepts (any request needs one)."""

    def __init__(self) -> None:
        self.connections = 0
        self._lock = threading.Lock()
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with outer._lock:
                    outer.connections += 1
                self.request.shutdown(socket.SHUT_RDWR)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> CountingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def check_file(path: Path, server: CountingServer | None) -> CliResult:
    """``validate`` the file, and ``run`` it when it is invalid: the contract of a bad job file.

    Exit 0 or 2 for validate; for an invalid file exit 2 from both commands, a message that names the file,
    never a traceback, and not one connection to the Graph URL.
    """
    checked = run_main("validate", str(path))
    assert checked.code in (0, 2), (checked.code, checked.text[-3000:])
    assert "Traceback" not in checked.text, checked.text[-3000:]
    if checked.code == 2:
        assert str(path) in checked.err, checked.err[-2000:]
        if server is not None:
            before = server.connections
            ran = run_main("run", str(path), "--graph-url", server.url)
            assert ran.code == 2, (ran.code, ran.text[-3000:])
            assert "Traceback" not in ran.text, ran.text[-3000:]
            assert server.connections == before, "an invalid job reached the Graph URL"
    return checked


HostileCase = tuple[str, Callable[[Path], Path], str | None]
