"""``MetaGraphHook``: an Airflow connection of type ``meta_graph`` → the engine's :class:`EngineConfig`.

Connection fields (declared for the UI in ``get_provider_info``, not here: Airflow >= 3.2 ignores hook UI
methods):

========================  ==================================================================
password                  the access token (a system-user token in production)
extra ``app_secret``      the app secret; every call then carries ``appsecret_proof``
extra ``api_version``     Graph API version, default ``v24.0``
extra ``base_url``        Graph API root, default ``https://graph.facebook.com`` (the simulator's
                          URL in tests)
extra ``ad_account_id``   default ad account ``act_<id>``: jobs that name no account use it and
                          ``test_connection`` reads it
========================  ==================================================================

Extras are also read under Airflow's prefixed form ``extra__meta_graph__<name>``. A connection can be
given as JSON in an environment variable::

    AIRFLOW_CONN_META_DEFAULT='{"conn_type": "meta_graph", "password": "<token>",
        "extra": {"app_secret": "<secret>", "base_url": "http://127.0.0.1:8765", "ad_account_id": "act_1"}}'

Secrets become :class:`~pydantic.SecretStr` at once; the hook never logs them (Airflow also masks the
password and any extra named like a secret).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook
from pydantic import SecretStr, ValidationError

from bulk_engine import ConfigError, Credentials, EngineConfig

from .._graph import GraphReadError, graph_get, run_sync

CONN_TYPE = "meta_graph"
DEFAULT_CONN_ID = "meta_default"
DEFAULT_BASE_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v24.0"


class MetaGraphHook(BaseHook):
    """Turns the ``meta_graph`` connection ``meta_conn_id`` into an :class:`EngineConfig`.

    :param meta_conn_id: the Airflow connection id (default ``meta_default``).
    :param engine_overrides: extra :class:`EngineConfig` fields (e.g. ``{"governor": GovernorConfig(...),
        "seed": 7}``) applied on top of what the connection says.
    """

    conn_name_attr = "meta_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONN_TYPE
    hook_name = "Meta Graph API"

    def __init__(
        self,
        meta_conn_id: str = DEFAULT_CONN_ID,
        *,
        engine_overrides: dict[str, Any] | None = None,
        logger_name: str | None = None,
    ) -> None:
        super().__init__(logger_name=logger_name)
        self.meta_conn_id = meta_conn_id
        self.engine_overrides = dict(engine_overrides or {})
        self._config: EngineConfig | None = None
        self._default_account: str | None = None

    def __repr__(self) -> str:
        return f"MetaGraphHook(meta_conn_id={self.meta_conn_id!r})"

    # --- connection → config -----------------------------------------------------------------------
    def get_conn(self) -> EngineConfig:
        """The engine configuration for this connection (cached per hook)."""
        if self._config is None:
            conn = self.get_connection(self.meta_conn_id)
            self._config, self._default_account = build_engine_config(
                conn.password, conn.extra_dejson, self.engine_overrides, conn_id=self.meta_conn_id
            )
        return self._config

    def get_engine_config(self) -> EngineConfig:
        return self.get_conn()

    async def aget_engine_config(self) -> EngineConfig:
        """Async variant for triggers: reads the connection without blocking the triggerer's loop."""
        if self._config is None:
            conn = await self.aget_connection(self.meta_conn_id)
            extra = await conn.aextra_dejson()
            self._config, self._default_account = build_engine_config(
                conn.password, extra, self.engine_overrides, conn_id=self.meta_conn_id
            )
        return self._config

    @property
    def default_ad_account_id(self) -> str | None:
        """The connection's default ad account (``act_<id>``), or ``None``."""
        self.get_conn()
        return self._default_account

    # --- connection test ---------------------------------------------------------------------------
    def test_connection(self) -> tuple[bool, str]:
        """A real read: ``GET /<api_version>/<default ad account>?fields=id,name`` (``/me`` without one).

        Returns ``(True, "…")`` when the token can read the account, else ``(False, reason)``; the reason
        names the Graph error code but never the token.
        """
        try:
            config = self.get_conn()
        except ConfigError as err:
            return False, str(err)
        account = self._default_account
        path = account or "me"
        try:
            read = run_sync(lambda: graph_get(config, path, {"fields": "id,name"}, account_id=account))
        except GraphReadError as err:
            return False, str(err)
        if not read.ok:
            return False, f"GET {path} failed: {read.describe_error()}"
        name = read.body.get("name") if isinstance(read.body, dict) else None
        return True, f"Connected to {config.graph_url} ({config.api_version}): read {path}" + (
            f" ({name})" if name else ""
        )


def _extra(extra: dict[str, Any], name: str) -> Any:
    value = extra.get(name)
    if value in (None, ""):
        value = extra.get(f"extra__{CONN_TYPE}__{name}")
    return None if value in (None, "") else value


def build_engine_config(
    token: str | None,
    extra: dict[str, Any],
    overrides: dict[str, Any] | None = None,
    *,
    conn_id: str = DEFAULT_CONN_ID,
) -> tuple[EngineConfig, str | None]:
    """``(EngineConfig, default ad account)`` from a connection's password and extras.

    Raises :class:`~bulk_engine.ConfigError` naming the connection and the bad field (never its value).
    """
    if not token:
        raise ConfigError(f"connection {conn_id!r}: the password (access token) is empty")
    app_secret = _extra(extra, "app_secret")
    account = _extra(extra, "ad_account_id")
    if account is not None:
        account = str(account)
        if not account.startswith("act_"):
            account = f"act_{account}"
    params: dict[str, Any] = {
        "credentials": Credentials(
            access_token=SecretStr(token),
            app_secret=SecretStr(str(app_secret)) if app_secret is not None else None,
        ),
        "graph_url": str(_extra(extra, "base_url") or DEFAULT_BASE_URL),
        "api_version": str(_extra(extra, "api_version") or DEFAULT_API_VERSION),
    }
    params.update(overrides or {})
    try:
        return EngineConfig(**params), account
    except ValidationError as err:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) + ": " + e["msg"] for e in err.errors())
        raise ConfigError(f"connection {conn_id!r} is invalid: {fields}") from None
