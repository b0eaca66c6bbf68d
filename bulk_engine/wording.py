"""Words for people, shared by the engine's log lines and the reporting views (no dependencies)."""

from __future__ import annotations


def wait_subject(scope: str, account_id: str | None, buc_type: str | None) -> str:
    """Who waits, in words: ``all accounts (app)``, ``ad account act_1 (every use case)``,
    ``ad account act_1 (ads_management)``."""
    if scope == "app":
        return "all accounts (app)"
    if scope == "account" or not buc_type:
        return f"ad account {account_id} (every use case)"
    return f"ad account {account_id} ({buc_type})"


def duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 120:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
