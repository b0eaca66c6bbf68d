"""``bulk-engine report REPORT_JSON``: re-render a saved JSON report as HTML and/or CSV, or print its summary.

Why: a report is read incrementally (a million-operation report never fits in memory) and scrubbed again —
the file may come from an older version, or hold other secrets.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import EXIT_OK, UsageError, say, scrubber_of

__all__ = ["configure_report", "run_report"]


def configure_report(parser: argparse.ArgumentParser) -> None:
    parser.description = "Re-render a saved JSON report as HTML and/or CSV, or print its summary."
    parser.add_argument(
        "report_json",
        type=Path,
        metavar="REPORT_JSON",
        help="a report written by run --report",
    )
    parser.add_argument("--html", type=Path, metavar="PATH", help="write the HTML report here")
    parser.add_argument("--csv", type=Path, metavar="PATH", help="write the CSV report here")


def run_report(args: argparse.Namespace) -> int:
    from bulk_engine.reporting import (
        ReportFormatError,
        ReportPaths,
        read_report,
        write_reports,
    )
    from bulk_engine.reporting.report import all_runs_summary, describe_failure_group

    scrubber = scrubber_of(args)  # scrubbed again: the file may come from an older version, or other secrets
    try:
        saved = read_report(args.report_json)  # incrementally: a million-operation report never fits memory
    except ReportFormatError as err:
        raise UsageError(str(err)) from None
    saved.summarise(fill_only=True)  # an older report may lack the aggregates
    written = write_reports(saved, ReportPaths(None, args.csv, args.html), scrubber)
    report = scrubber.scrub_value(saved.head)
    counts = report["counts"]
    say(
        args,
        f"Job {report['job_id']} ({report.get('status', 'completed')}): {counts.get('succeeded', 0):,} succeeded, "
        f"{counts.get('failed', 0):,} failed, {counts.get('skipped', 0):,} skipped; "
        f"{report['http_requests']:,} HTTP requests, {report['graph_calls']:,} Graph calls, "
        f"{report['retries']:,} retries, {report['throttle_events']:,} throttle events, {report['elapsed_s']} s",
    )
    runs = all_runs_summary(report)
    if runs is not None:
        say(args, "  " + runs)
    for group in report["failures_by_code"][:10]:
        say(args, "  " + describe_failure_group(group))
    for path in written:
        print(f"wrote {path}")
    return EXIT_OK
