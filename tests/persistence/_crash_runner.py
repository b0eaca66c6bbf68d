"""Runs (or resumes) the crash test's job in a process of its own, so the test can SIGKILL it anywhere.

A stand-in for the CLI's ``bulk-engine run JOB --graph-url URL --journal PATH`` and ``bulk-engine resume
JOB_ID --journal PATH`` until they exist. The token comes from ``META_ACCESS_TOKEN`` (never argv)::

    python _crash_runner.py run    --graph-url URL --journal PATH --job-id ID --trees N --accounts A,B --page P
    python _crash_runner.py resume --graph-url URL --journal PATH --job-id ID

Output, one line each, flushed: ``start <ops already succeeded in the journal>``; ``sent <n>`` when the intent
of a batch of n operations is committed (the batch leaves right after); ``recorded <k>`` when a batch's
outcomes are committed (k of them succeeded); ``outcome <state>`` per operation
(operations answered from the journal come first); ``done {"counts": …, <engine counters>}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import AsyncIterator, Sequence

import anyio
from persist_support import trees

from bulk_engine import BulkEngine, Credentials, EngineConfig, Outcome, RetryConfig, ScaledClock
from bulk_engine.persistence import OpStatus, OutcomeWrite, SqliteJournal, load_operations


def _line(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


class ReportingJournal(SqliteJournal):
    """Prints ``sent <n>`` once a batch's intent is committed (the batch leaves right after) and
    ``recorded <succeeded>`` once a batch's outcomes are, so the test can SIGKILL the process there."""

    def mark_sent(self, job_id: str, op_ids: Sequence[str]) -> None:
        super().mark_sent(job_id, op_ids)
        _line(f"sent {len(op_ids)}")

    def record_outcomes(self, job_id: str, outcomes: Sequence[OutcomeWrite]) -> None:
        super().record_outcomes(job_id, outcomes)
        _line(f"recorded {sum(o.status is OpStatus.SUCCEEDED for o in outcomes)}")


async def main(args: argparse.Namespace) -> None:
    config = EngineConfig(
        credentials=Credentials(access_token=os.environ["META_ACCESS_TOKEN"]),
        graph_url=args.graph_url,
        retry=RetryConfig(max_attempts=12),
        max_batch_ops=20,  # more, smaller batches: more places to be killed at
        seed=args.seed,
    )
    with ReportingJournal(args.journal) as journal:
        job = journal.get_job(args.job_id)
        _line(f"start {job.counts.get('succeeded', 0) if job else 0}")
        async with BulkEngine(config, journal=journal, clock=ScaledClock(args.scale)) as engine:
            outcomes: AsyncIterator[Outcome]
            if args.mode == "run":
                ops = trees(args.trees, args.accounts.split(","), args.page)
                outcomes = engine.stream(ops, job_id=args.job_id)
            else:
                if job is None:
                    raise SystemExit(f"no job {args.job_id!r} in {args.journal}")
                plans = load_operations(journal, args.job_id)
                outcomes = engine.stream(
                    plans if job.ordered else list(plans), job_id=args.job_id, fingerprint=job.fingerprint
                )
            counts: dict[str, int] = {}
            async for outcome in outcomes:
                counts[outcome.state.value] = counts.get(outcome.state.value, 0) + 1
                _line(f"outcome {outcome.state.value}")
            stats = engine.last_stats
    keys = ("http_requests", "unknown_outcomes", "lookups", "recovered", "from_journal")
    _line("done " + json.dumps({"counts": counts, **{k: getattr(stats, k) for k in keys}}))


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("run", "resume"))
    parser.add_argument("--graph-url", required=True)
    parser.add_argument("--journal", required=True)
    parser.add_argument("--job-id", required=True)
    parser.add_argument("--trees", type=int, default=0)
    parser.add_argument("--accounts", default="")
    parser.add_argument("--page", default="")
    parser.add_argument("--scale", type=float, default=600.0)
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


if __name__ == "__main__":
    anyio.run(main, parse(sys.argv[1:]))
