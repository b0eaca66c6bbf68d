"""Provider metadata for Airflow's ``ProvidersManager`` (entry point ``apache_airflow_provider``).

Airflow >= 3.2 reads the connection form declaratively from ``conn-fields`` and ``ui-field-behaviour``
here and no longer calls the hook's ``get_connection_form_widgets``/``get_ui_field_behaviour``. This
function must stay import-light: Airflow calls it while loading its configuration.
"""

from __future__ import annotations

from typing import Any

PACKAGE_NAME = "meta-bulk-engine"
CONN_TYPE = "meta_graph"


def get_provider_info() -> dict[str, Any]:
    """The provider description, validated by Airflow against ``provider_info.schema.json``."""
    return {
        "package-name": PACKAGE_NAME,
        "name": "Meta Marketing API (bulk engine)",
        "description": (
            "Bulk create, copy, migrate to Advantage+, pause and message through dependency-aware Graph "
            "API batches paced by the rate-limit headers; deferrable per-verb operators that free the "
            "worker during throttle cool-downs and resume retries from the engine's journal.\n"
        ),
        "integrations": [
            {
                "integration-name": "Meta Marketing API",
                "external-doc-url": "https://developers.facebook.com/docs/marketing-api/",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Meta Marketing API",
                "python-modules": ["airflow_provider.hooks.meta_graph"],
            }
        ],
        "operators": [
            {
                "integration-name": "Meta Marketing API",
                "python-modules": [
                    "airflow_provider.operators.bulk",
                    "airflow_provider.operators.job",
                    "airflow_provider.operators.create",
                    "airflow_provider.operators.copy",
                    "airflow_provider.operators.migrate",
                    "airflow_provider.operators.status",
                    "airflow_provider.operators.messages",
                    "airflow_provider.operators.export",
                    "airflow_provider.operators.update",
                ],
            }
        ],
        "triggers": [
            {
                "integration-name": "Meta Marketing API",
                "python-modules": [
                    "airflow_provider.triggers.throttle",
                    "airflow_provider.triggers.async_requests",
                ],
            }
        ],
        "extra-links": ["airflow_provider.links.AdsManagerLink"],
        "connection-types": [
            {
                "connection-type": CONN_TYPE,
                "hook-class-name": "airflow_provider.hooks.meta_graph.MetaGraphHook",
                "hook-name": "Meta Graph API",
                "conn-fields": {
                    "app_secret": {
                        "label": "App secret",
                        "schema": {"type": ["string", "null"], "format": "password"},
                        "description": "Signs every call with appsecret_proof (recommended).",
                    },
                    "api_version": {
                        "label": "API version",
                        "schema": {"type": ["string", "null"], "default": "v24.0"},
                        "description": "Graph API version, e.g. v24.0.",
                    },
                    "base_url": {
                        "label": "Base URL",
                        "schema": {"type": ["string", "null"], "default": "https://graph.facebook.com"},
                        "description": "Graph API root; point it at the local simulator in tests.",
                    },
                    "ad_account_id": {
                        "label": "Default ad account",
                        "schema": {"type": ["string", "null"]},
                        "description": "act_<ID> used when a task names no account; test_connection reads it.",
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["host", "schema", "port", "login", "extra"],
                    "relabeling": {"password": "Access token"},
                    "placeholders": {
                        "password": "System-user access token",
                        "api_version": "v24.0",
                        "base_url": "https://graph.facebook.com",
                        "ad_account_id": "act_1234567890",
                    },
                },
            }
        ],
    }
