"""``bulk-engine demo``: the shipped demo job against an embedded simulator, with the live view and reports.

Why: a first look at the engine needs no token and no network (:mod:`bulk_engine.demo`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import EXIT_INTERRUPTED
from .options import add_output_options

__all__ = ["configure_demo", "run_demo_command"]


def configure_demo(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run the shipped demo job (bulk_engine/demo_job.yaml: click-to-Messenger trees, a copy, an Advantage+ "
        "migration, a pause) against an embedded simulator with realistic latency and a small quota, with the "
        "live view, and write the JSON, CSV and HTML reports. Needs no token and no network."
    )
    parser.add_argument(
        "--report",
        type=Path,
        default=Path("reports/demo-report.json"),
        metavar="PATH",
        help="the JSON report (default: reports/demo-report.json); the CSV and HTML go next to it",
    )
    parser.add_argument(
        "--report-csv",
        type=Path,
        metavar="PATH",
        help="the CSV report (default: next to --report)",
    )
    parser.add_argument(
        "--report-html",
        type=Path,
        metavar="PATH",
        help="the HTML report (default: next to --report)",
    )
    add_output_options(parser, graph=False)


def run_demo_command(args: argparse.Namespace) -> int:
    import anyio

    from bulk_engine.demo import run_demo
    from bulk_engine.reporting import ReportPaths

    report: Path = args.report
    paths = ReportPaths(
        report,
        args.report_csv or report.with_suffix(".csv"),
        args.report_html or report.with_suffix(".html"),
    )
    try:
        return int(anyio.run(lambda: run_demo(paths, log_format=args.log_format)))
    except KeyboardInterrupt:  # before the run's signal handlers were installed
        print("bulk-engine demo: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
