"""Small synchronous HTTP helpers for simulator tests (stdlib only, so the tests exercise the real wire)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def error(self) -> dict[str, Any]:
        assert isinstance(self.body, dict) and "error" in self.body, self.body
        return dict(self.body["error"])


def _encode(params: dict[str, Any]) -> dict[str, str]:
    return {k: (json.dumps(v) if isinstance(v, (dict, list)) else str(v)) for k, v in params.items()}


def call(
    base_url: str,
    method: str,
    path: str,
    params: dict[str, Any] | None = None,
    *,
    headers: dict[str, str] | None = None,
    json_body: dict[str, Any] | None = None,
) -> Answer:
    """One HTTP request: GET/DELETE params go in the query string, POST params in a form body."""
    params = _encode(params or {})
    url = base_url.rstrip("/") + "/" + path.lstrip("/")
    data: bytes | None = None
    hdrs = dict(headers or {})
    if json_body is not None:
        data = json.dumps(json_body).encode()
        hdrs["Content-Type"] = "application/json"
        if params:
            url += "?" + urllib.parse.urlencode(params)
    elif method.upper() == "POST":
        data = urllib.parse.urlencode(params).encode()
        hdrs["Content-Type"] = "application/x-www-form-urlencoded"
    elif params:
        url += "?" + urllib.parse.urlencode(params)
    req = urllib.request.Request(url, data=data, method=method.upper(), headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return Answer(resp.status, dict(resp.headers), json.loads(resp.read() or b"null"))
    except urllib.error.HTTPError as err:
        return Answer(err.code, dict(err.headers), json.loads(err.read() or b"null"))


class Graph:
    """A tiny Graph client bound to one simulator and token, for readable tests."""

    def __init__(self, base_url: str, token: str, version: str = "v24.0") -> None:
        self.base_url = base_url
        self.token = token
        self.version = version

    def _path(self, path: str) -> str:
        return f"/{self.version}/{path.lstrip('/')}" if self.version else path

    def get(self, path: str, **params: Any) -> Answer:
        return call(self.base_url, "GET", self._path(path), {"access_token": self.token, **params})

    def post(self, path: str, **params: Any) -> Answer:
        return call(self.base_url, "POST", self._path(path), {"access_token": self.token, **params})

    def delete(self, path: str, **params: Any) -> Answer:
        return call(self.base_url, "DELETE", self._path(path), {"access_token": self.token, **params})

    def batch(self, ops: list[dict[str, Any]], **params: Any) -> Answer:
        return call(self.base_url, "POST", "/", {"access_token": self.token, "batch": ops, **params})


TARGETING = {"geo_locations": {"countries": ["US"]}}


def make_campaign(g: Graph, act: str, **overrides: Any) -> str:
    params = {
        "name": "Campaign",
        "objective": "OUTCOME_TRAFFIC",
        "special_ad_categories": [],
        "status": "PAUSED",
        **overrides,
    }
    answer = g.post(f"{act}/campaigns", **params)
    assert answer.status == 200, answer.body
    return str(answer.body["id"])


def make_adset(g: Graph, act: str, campaign_id: str, **overrides: Any) -> str:
    params = {
        "name": "Ad set",
        "campaign_id": campaign_id,
        "billing_event": "IMPRESSIONS",
        "optimization_goal": "LINK_CLICKS",
        "daily_budget": 1000,
        "targeting": TARGETING,
        "status": "PAUSED",
        **overrides,
    }
    answer = g.post(f"{act}/adsets", **params)
    assert answer.status == 200, answer.body
    return str(answer.body["id"])


def make_creative(g: Graph, act: str, page_id: str, **overrides: Any) -> str:
    params = {
        "name": "Creative",
        "object_story_spec": {
            "page_id": page_id,
            "link_data": {"link": "https://example.com", "message": "Hi"},
        },
        **overrides,
    }
    answer = g.post(f"{act}/adcreatives", **params)
    assert answer.status == 200, answer.body
    return str(answer.body["id"])


def make_ad(g: Graph, act: str, adset_id: str, creative_id: str, **overrides: Any) -> str:
    params = {
        "name": "Ad",
        "adset_id": adset_id,
        "creative": {"creative_id": creative_id},
        "status": "PAUSED",
        **overrides,
    }
    answer = g.post(f"{act}/ads", **params)
    assert answer.status == 200, answer.body
    return str(answer.body["id"])
