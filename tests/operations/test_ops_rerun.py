"""The library's ``run_job`` is as exactly-once as the CLI: the same job file run twice creates nothing twice.

``run_job`` names each engine job ``<job id>/<task key>/<n>`` from the job file's ``job_id``, so the second
run recomputes the same idempotency keys, probes for what the first run created and answers it (with a
journal: from the journal; without one: from the server, by key).
"""

from __future__ import annotations

from typing import Any

import pytest
from ops_support import simple_tree, tree_job

from bulk_engine.operations import run_job
from bulk_engine.operations.jobfile import parse_job
from bulk_engine.persistence import MemoryJournal


@pytest.mark.parametrize("journaled", [False, True], ids=["no-journal", "journal"])
async def test_run_job_twice_creates_nothing_the_second_time(start_sim: Any, journaled: bool) -> None:
    sim = await start_sim()
    spec = parse_job(
        {"job_id": "spring", "account_id": sim.act, **tree_job([simple_tree("A"), simple_tree("B")])}
    )
    journal = MemoryJournal() if journaled else None
    reports = []
    for _ in range(2):
        engine = sim.engine()
        engine.journal = journal
        async with engine:
            reports.append(await run_job(engine, spec))
    first, second = reports
    assert first.ok and second.ok
    created = first.counts["succeeded"]
    assert len(sim.nodes("campaign")) == 2 and len(sim.nodes("ad")) == 4  # nothing twice
    assert sum(len(sim.nodes(t)) for t in ("campaign", "adset", "adcreative", "ad")) == created
    again = second.to_result()
    assert again.recovered + again.from_journal == created  # answered, not re-created
    assert first.to_dict()["engine_jobs"] == second.to_dict()["engine_jobs"] == ["spring/t0/0"]
