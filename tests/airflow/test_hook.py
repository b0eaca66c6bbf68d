"""MetaGraphHook: a ``meta_graph`` connection from an AIRFLOW_CONN_ variable → EngineConfig; test_connection."""

from __future__ import annotations

from typing import Any

import pytest
from af_helpers import CONN_ENV, conn_json
from pydantic import SecretStr

from airflow_provider.hooks.meta_graph import MetaGraphHook, build_engine_config
from bulk_engine import ConfigError, Credentials, GovernorConfig


def test_connection_from_env_var_builds_engine_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        CONN_ENV,
        conn_json("http://127.0.0.1:9", "TOKEN-123", "1000000001", app_secret="S3CRET", api_version="v23.0"),
    )
    hook = MetaGraphHook(engine_overrides={"governor": GovernorConfig(max_concurrency=2)})

    config = hook.get_engine_config()

    assert config.graph_url == "http://127.0.0.1:9"
    assert config.api_version == "v23.0"
    assert isinstance(config.credentials.access_token, SecretStr)
    assert config.credentials.access_token.get_secret_value() == "TOKEN-123"
    assert config.credentials.app_secret is not None
    assert config.credentials.app_secret.get_secret_value() == "S3CRET"
    assert config.governor.max_concurrency == 2
    assert hook.default_ad_account_id == "act_1000000001"
    for text in (repr(hook), repr(config), str(config)):
        assert "TOKEN-123" not in text and "S3CRET" not in text


def test_prefixed_extras_and_defaults() -> None:
    config, account = build_engine_config(
        "tok",
        {"extra__meta_graph__base_url": "http://127.0.0.1:1", "extra__meta_graph__ad_account_id": "act_5"},
    )
    assert (config.graph_url, config.api_version, account) == ("http://127.0.0.1:1", "v24.0", "act_5")
    assert config.credentials == Credentials(access_token=SecretStr("tok"))
    default, none = build_engine_config("tok", {})
    assert (default.graph_url, none) == ("https://graph.facebook.com", None)


@pytest.mark.parametrize(
    ("token", "extra", "message"),
    [
        ("", {}, "access token"),
        ("tok", {"base_url": "ftp://x"}, "graph_url"),
        ("tok", {"api_version": "24"}, "api_version"),
    ],
)
def test_bad_connections_raise_config_errors_without_secrets(
    token: str, extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        build_engine_config(token, extra, conn_id="meta_x")
    assert "meta_x" in str(info.value)


def test_test_connection_reads_the_default_account(meta_conn: Any) -> None:
    ok, message = MetaGraphHook().test_connection()

    assert ok, message
    assert meta_conn.info()["ad_account_ids"][0] in message


def test_test_connection_with_a_bad_token(graph_simulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    info = graph_simulator.info()
    monkeypatch.setenv(CONN_ENV, conn_json(info["url"], "NOT-A-TOKEN", info["ad_account_ids"][0]))

    ok, message = MetaGraphHook().test_connection()

    assert not ok
    assert "code 190" in message
    assert "NOT-A-TOKEN" not in message


def test_test_connection_with_an_unreachable_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONN_ENV, conn_json("http://127.0.0.1:9", "tok", "act_1"))  # discard port: refused

    ok, message = MetaGraphHook().test_connection()

    assert not ok
    assert "cannot reach" in message


def test_connection_json_round_trips_through_airflow(meta_conn: Any) -> None:
    """Airflow's own Connection object parses the JSON form and finds our hook for the type."""
    from airflow.sdk import Connection

    conn = Connection.from_json(conn_json("http://127.0.0.1:1", "t", "act_1"), conn_id="x")
    assert conn.conn_type == "meta_graph"
    ok, message = Connection.get("meta_default").test_connection()
    assert ok, message
