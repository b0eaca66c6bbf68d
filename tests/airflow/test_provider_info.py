"""The provider as Airflow sees it: schema-valid provider info, discovered connection type and form."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema

from airflow_provider.get_provider_info import get_provider_info


def test_provider_info_validates_against_airflows_schema() -> None:
    import airflow

    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    info = get_provider_info()

    jsonschema.validate(info, schema)
    dist = importlib.metadata.distribution("meta-bulk-engine")
    assert info["package-name"] == dist.metadata["Name"]
    modules = [
        m
        for section in ("hooks", "operators", "triggers")
        for entry in info[section]
        for m in entry["python-modules"]
    ]
    for module in modules:
        importlib.import_module(module)


def test_providers_manager_discovers_the_meta_graph_connection_type() -> None:
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    manager = ProvidersManager()

    assert "meta-bulk-engine" in manager.providers
    hook = ProvidersManagerTaskRuntime().hooks["meta_graph"]
    assert hook is not None
    assert hook.hook_class_name == "airflow_provider.hooks.meta_graph.MetaGraphHook"
    assert hook.connection_id_attribute_name == "meta_conn_id"
    assert hook.hook_name == "Meta Graph API"
    widgets = manager.connection_form_widgets
    for field in ("app_secret", "api_version", "base_url", "ad_account_id"):
        assert f"extra__meta_graph__{field}" in widgets
    assert widgets["extra__meta_graph__app_secret"].is_sensitive
    assert not widgets["extra__meta_graph__base_url"].is_sensitive
    behaviour = manager.field_behaviours["meta_graph"]
    assert {"host", "login", "port", "schema"} <= set(behaviour["hidden_fields"])
    assert behaviour["relabeling"] == {"password": "Access token"}


def test_airflow_providers_list_shows_the_provider() -> None:
    airflow_cli = Path(sys.executable).with_name("airflow")
    out = subprocess.run(
        [str(airflow_cli), "providers", "list", "--output", "json"],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ.copy(),
        timeout=120,
    ).stdout
    listed = {p["package_name"]: p for p in json.loads(out[out.index("[") :])}
    assert listed["meta-bulk-engine"]["version"] == importlib.metadata.version("meta-bulk-engine")
