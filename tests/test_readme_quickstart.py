"""The README's library quickstart, executed exactly as printed, against the simulator on 127.0.0.1."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import anyio

from bulk_engine.persistence.keys import key_in_name
from bulk_engine.simulator import SimulatorConfig, SimulatorServer

README = Path(__file__).resolve().parents[1] / "README.md"


def quickstart() -> str:
    """The first Python block under "## Library quickstart"."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Library quickstart", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found, "the README has no Python quickstart"
    return found.group(1)


async def test_the_readme_quickstart_runs_as_printed() -> None:
    server = await SimulatorServer(SimulatorConfig()).start()
    try:
        info = server.info()
        env = {
            **os.environ,
            "META_ACCESS_TOKEN": info["access_token"],
            "META_GRAPH_URL": server.url,
        }
        done = await anyio.run_process([sys.executable, "-c", quickstart()], env=env, check=False)
    finally:
        await server.stop()
    out, err = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, err
    assert info["ad_account_ids"][0] == "act_1000000001" and info["page_ids"][0] == "2000000001"
    store = server.core.store
    (ad,) = store.nodes("ad")
    (adset,) = store.nodes("adset")
    assert out.strip() == f"{{'succeeded': 4, 'failed': 0, 'skipped': 0}} ad {ad.id} in ad set {adset.id}"
    assert key_in_name(ad.data["name"]) and ad.data["adset_id"] == adset.id and ad.data["status"] == "PAUSED"
    assert info["access_token"] not in out + err
