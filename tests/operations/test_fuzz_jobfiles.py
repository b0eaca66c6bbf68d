"""Bad input never crashes (issue 20): hypothesis over job-file trees, written as YAML and JSON files and run
through the real CLI (``validate``, and ``run`` against a counting loopback server for invalid files).

Two sources of trees: the rich valid job of ``fuzz_support`` with random nodes deleted, replaced, retyped or
extended (so the values reach the rules, not only the schema), and job-shaped trees built from the models'
own field names with random values of every JSON type. Derandomized, so CI replays the same cases;
``FUZZ_EXAMPLES=10000`` runs a bigger one locally.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fuzz_support import RICH_JOB, CountingServer, check_file, mutated_jobs, serialise, shaped_jobs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "400"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FORMATS = st.sampled_from(["yaml", "json", "json-ascii"])


@pytest.fixture(scope="module")
def server() -> Iterator[CountingServer]:
    with CountingServer() as counting:
        yield counting


def _check(data: Any, fmt: str, server: CountingServer) -> None:
    raw = serialise(data, fmt)
    if raw is None:  # e.g. YAML cannot carry a lone surrogate
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("job.yaml" if fmt == "yaml" else "job.json")
        path.write_bytes(raw)
        check_file(path, server)


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_the_rich_job_is_valid_so_mutations_start_from_a_valid_tree(fmt: str, server: CountingServer) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"job.{fmt}"
        path.write_bytes(serialise(RICH_JOB, fmt) or b"")
        assert check_file(path, server).code == 0


@FUZZ
@given(data=mutated_jobs(), fmt=FORMATS)
def test_mutated_jobs_never_crash_and_never_reach_graph(data: Any, fmt: str, server: CountingServer) -> None:
    _check(data, fmt, server)


@FUZZ
@given(data=shaped_jobs(), fmt=FORMATS)
def test_job_shaped_trees_never_crash_and_never_reach_graph(
    data: Any, fmt: str, server: CountingServer
) -> None:
    _check(data, fmt, server)


YAML_ALPHABET = st.sampled_from(
    [*"ab1:-[]{},&*!|>'\"#%@`?<= \t\n\r\\", "!!int ", "!!binary ", "<<", "&a ", "*a"]
)


@FUZZ
@given(raw=st.binary(max_size=300) | st.lists(YAML_ALPHABET, max_size=80).map(lambda p: "".join(p).encode()))
def test_arbitrary_bytes_never_crash(raw: bytes, server: CountingServer) -> None:
    with tempfile.TemporaryDirectory() as folder:
        for name in ("job.yaml", "job.json"):
            path = Path(folder) / name
            path.write_bytes(raw)
            check_file(path, server)
