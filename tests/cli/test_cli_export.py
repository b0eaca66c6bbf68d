"""``bulk-engine export`` as a process against a simulator: files, formats, filters, adaptive pages, bad input."""

from __future__ import annotations

import csv
import json
import signal
from pathlib import Path
from typing import Any

import anyio
from cli_support import finish, read_line, run_cli, start_cli

from bulk_engine.simulator import FaultConfig, SimulatorConfig, SimulatorServer


def _empty(folder: Path) -> bool:
    return not any(folder.iterdir())


async def _cli(*args: str, token: str | None) -> Any:
    """The CLI in a worker thread, so the in-process simulator keeps serving on this loop."""
    return await anyio.to_thread.run_sync(lambda: run_cli(*args, token=token, timeout=120.0))


async def test_export_to_csv_and_jsonl_with_filters_and_a_reduce_data_answer(tmp_path: Path) -> None:
    config = SimulatorConfig(
        access_tier="standard_access",
        seed_campaigns=3_000,
        faults=FaultConfig(reduce_data_above=300, reduce_data_times=2),
    )
    async with SimulatorServer(config) as sim:
        info = sim.info()
        act, token = info["ad_account_ids"][0], info["access_token"]
        out = tmp_path / "out" / "campaigns.csv"
        done = await _cli(
            "export", "campaigns", "--account", act, "--fields", "name,status,objective", "--output", str(out),
            "--graph-url", sim.url, "--page-size", "600", "--log-format", "json",
            token=token,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        with out.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == 3_000 and len({r["id"] for r in rows}) == 3_000
        assert list(rows[0]) == ["id", "name", "status", "objective"]
        events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        exported = [e for e in events if e.get("event") == "exported"]
        assert exported and exported[0]["rows"] == 3_000
        assert sim.core.faults.injected["reduce_data"] == 2
        assert token not in out.read_text(encoding="utf-8") + done.stdout + done.stderr

        first, _ = info["seeded_campaigns"][act]
        wanted = [str(int(first) + n) for n in (3, 5, 8)]
        jsonl = tmp_path / "some.jsonl"
        done = await _cli(
            "export", "campaigns", "--account", act, "--fields", "name", "--output", str(jsonl),
            "--filter", f"id:IN:{','.join(wanted)}", "--filter", "name:STARTS_WITH:Seeded",
            "--effective-status", "ACTIVE", "--graph-url", sim.url,
            token=token,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert sorted(json.loads(line)["id"] for line in jsonl.read_text().splitlines()) == wanted
        assert "exported 3 rows" in done.stdout


async def test_bad_input_exits_2_naming_the_flag_before_any_call(tmp_path: Path) -> None:
    async with SimulatorServer(SimulatorConfig(access_tier="standard_access")) as sim:
        info = sim.info()
        act, token = info["ad_account_ids"][0], info["access_token"]
        before = len(sim.core.calls)
        cases = [
            (["insights", "--fields", "name"], "EDGE"),
            (["ads", "--fields", "name,spend"], "--fields"),
            (["adimages", "--fields", "hash", "--effective-status", "ACTIVE"], "--effective-status"),
            (["ads", "--fields", "name", "--filter", "spend:GREATER_THAN:5"], "--filter #1"),
        ]
        for args, flag in cases:
            done = await _cli(
                "export", *args, "--account", act, "--output", str(tmp_path / "x.csv"), "--graph-url", sim.url,
                token=token,
            )  # fmt: skip
            assert done.returncode == 2, (args, done.stderr)
            assert f"bulk-engine export: {flag}" in done.stderr, done.stderr
            assert "(rule " in done.stderr
        assert "[Graph code 100]" in done.stderr
        assert len(sim.core.calls) == before  # nothing was sent
        assert not (tmp_path / "x.csv").exists()
        done = await _cli(
            "export", "ads", "--account", act, "--fields", "name", "--output", "x.csv", token=None
        )
        assert done.returncode == 2 and "META_ACCESS_TOKEN" in done.stderr


def test_a_job_file_export_task_is_checked_with_file_and_line(tmp_path: Path) -> None:
    job = tmp_path / "export.yaml"
    job.write_text(
        "version: 1\naccount_id: act_1000000001\ntasks:\n  - type: export\n    edge: ads\n"
        "    fields: [name, spend]\n    output: ads.txt\n",
        encoding="utf-8",
    )
    done = run_cli("validate", str(job))
    assert done.returncode == 2
    assert f"{job}:6:" in done.stderr and "(rule export.field) [Graph code 100]" in done.stderr
    assert f"{job}:7:" in done.stderr and "(rule export.format)" in done.stderr


def test_a_nested_edge_in_fields_is_refused_with_file_line_and_rule(tmp_path: Path) -> None:
    """On Graph an expanded edge answers its own paging link, which carries the access token: refused (exit 2)
    before any call, in a job file and on the command line alike."""
    job = tmp_path / "export.yaml"
    job.write_text(
        "version: 1\naccount_id: act_1000000001\ntasks:\n  - type: export\n    edge: ads\n"
        "    fields:\n      - name\n      - campaign{ads{id}}\n    output: ads.jsonl\n",
        encoding="utf-8",
    )
    done = run_cli("validate", str(job))
    assert done.returncode == 2, done.stderr
    assert f"{job}:8:" in done.stderr and "(rule export.nested)" in done.stderr
    flags = run_cli(
        "export", "ads", "--account", "act_1000000001", "--fields", "name,campaign{ads{id}}",
        "--output", str(tmp_path / "ads.jsonl"), "--graph-url", "http://127.0.0.1:9",
        token="T" * 20,
    )  # fmt: skip
    assert flags.returncode == 2 and "export.nested" in flags.stderr, flags.stderr
    assert not (tmp_path / "ads.jsonl").exists()


async def test_an_interrupted_export_exits_3_and_writes_nothing(tmp_path: Path) -> None:
    config = SimulatorConfig(
        access_tier="standard_access", seed_campaigns=2_000, faults=FaultConfig(latency_ms=100)
    )
    async with SimulatorServer(config) as sim:
        info = sim.info()
        out = tmp_path / "never.csv"
        proc = start_cli(
            "export", "campaigns", "--account", info["ad_account_ids"][0], "--fields", "name",
            "-o", str(out), "--graph-url", sim.url, "--page-size", "20", "--log-format", "json",
            token=info["access_token"],
        )  # fmt: skip

        def stop_after_a_page() -> tuple[str, str]:
            assert proc.stdout is not None
            while True:  # each line within read_line's deadline; EOF ("") when the process exited first
                line = read_line(proc.stdout)
                if not line:
                    break  # it ended before a page answered: the assertions below say how
                if '"batch_done"' in line:
                    proc.send_signal(signal.SIGINT)
                    break
            return finish(proc)

        _, err = await anyio.to_thread.run_sync(stop_after_a_page)
    assert proc.returncode == 3, err
    assert _empty(tmp_path)  # no output, no temporary file
    assert "nothing written" in err
