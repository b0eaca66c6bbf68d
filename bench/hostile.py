"""The hostile front-end matrix as one table: every mode × rate × journal, run 1 through the front end,
then the same job again directly against the healthy simulator.

The front end and the cell runner live in ``tests/engine/hostile_front.py`` (shared with
``tests/engine/test_hostile_matrix.py``, which asserts what this prints). Columns:

* ``dup1`` / ``dup2``: duplicate objects (sum over ops of objects − 1, counted by idempotency key, or by
  name when the objects carry none) after run 1 and after the re-run;
* ``not-ok``: ops that had not succeeded after the re-run;
* ``other``: requests that reached the other origin the redirects point at (``+tok``: with the token);
* ``exceptions``: what escaped ``engine.run`` (type), per run;
* ``lost``: create ops with no object after the re-run;
* ``tracebacks logged``: WARNING+ log records with a traceback, by exception type (``4xOverflowError``);
* ``leaks``: places (logs, results, exceptions) where the token, app secret or appsecret_proof showed up;
* ``mangled``: requests the front end mangled / requests it got in run 1 (lookups and probes included).

```bash
.venv/bin/python bench/hostile.py                       # the whole matrix, 134 cells (~6-20 s)
.venv/bin/python bench/hostile.py --details             # … then why each failing cell fails
.venv/bin/python bench/hostile.py --modes echo_secrets,redirect_307 --journal sqlite
mkdir /tmp/old && git archive HEAD bulk_engine | tar -x -C /tmp/old
.venv/bin/python bench/hostile.py --engine-tree /tmp/old  # measure that tree's bulk_engine (before/after)
```
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.abc
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _use_tree(tree: str | None) -> None:
    """Import ``bulk_engine`` from ``tree`` (a checkout or ``git archive`` export) instead of this one.

    The editable install puts a finder on ``sys.meta_path`` that wins over ``PYTHONPATH``; drop it.
    """
    if tree is None:
        sys.path.insert(0, str(ROOT))
    else:
        sys.meta_path[:] = [
            f
            for f in sys.meta_path
            if not (isinstance(f, importlib.abc.MetaPathFinder) and "__editable__" in type(f).__module__)
        ]
        sys.path.insert(0, str(Path(tree).resolve()))
    sys.path.insert(0, str(ROOT / "tests" / "engine"))


COLUMNS = (
    ("mode", 20),
    ("rate", 4),
    ("seed", 4),
    ("journal", 7),
    ("dup1", 4),
    ("dup2", 4),
    ("not-ok", 6),
    ("other", 8),
    ("exceptions", 34),
    ("lost", 4),
    ("tracebacks logged", 26),
    ("leaks", 5),
    ("mangled", 7),
    ("wall", 5),
)


def _row(values: list[str]) -> str:
    return "  ".join(
        v.ljust(w) if i < 4 or i in (8, 10) else v.rjust(w)
        for i, (v, (_, w)) in enumerate(zip(values, COLUMNS, strict=True))
    )


def _cells(cell: Any) -> list[str]:
    exc = ", ".join(
        f"{name}:{fig.exception.split(':', 1)[0]}"
        for name, fig in (("run1", cell.run1), ("rerun", cell.rerun))
        if fig.exception
    )
    harness = [p for p in cell.run1.problems if p.startswith("harness error")]
    if harness:
        exc = (exc + ", " if exc else "") + "HARNESS:" + harness[0].split(":", 1)[0].split()[-1]
    other = str(cell.other_origin_hits) + (
        f"+{cell.other_origin_token_hits}tok" if cell.other_origin_token_hits else ""
    )
    return [
        cell.mode,
        f"{int(cell.rate * 100)}%",
        str(cell.seed),
        cell.journal,
        str(cell.dup_run1),
        str(cell.dup_rerun),
        str(len(cell.rerun.not_succeeded)),
        other,
        exc or "-",
        str(cell.lost),
        ",".join(f"{n}x{name}" for name, n in cell.traceback_types.most_common())
        or (str(len(cell.tracebacks)) if cell.tracebacks else "-"),
        str(len(cell.leaks)),
        f"{cell.mangled}/{cell.requests}",
        f"{cell.wall_s:.2f}",
    ]


async def _main(args: argparse.Namespace) -> int:
    import hostile_front as hf

    import bulk_engine

    modes = args.modes.split(",") if args.modes else list(hf.MODES)
    unknown = sorted(set(modes) - set(hf.MODES))
    if unknown:
        raise SystemExit(f"unknown modes {unknown}; known: {', '.join(hf.MODES)}")
    seeds = tuple(int(s) for s in args.seeds.split(","))
    journals = args.journal.split(",")
    cells = [c for c in hf.matrix(seeds) if c[0] in modes and c[3] in journals]
    print(
        f"engine: {Path(bulk_engine.__file__).parent}   virtual clock: {hf.SCALE:g}x   per-run timeout: {args.timeout:g} s"
    )
    print(
        f"job: {len(hf.job_ops(['act_1', 'act_2'], 'p', {'act_2': ['1']}))} ops (3 trees on 2 accounts + 4 status updates)"
    )
    print(_row([name for name, _ in COLUMNS]))
    print(_row(["-" * w for _, w in COLUMNS]))
    started = time.perf_counter()
    failing = 0
    details: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (mode, rate, seed, journal) in enumerate(cells):
            cell_dir = Path(tmp) / str(i)
            cell_dir.mkdir()
            cell = await hf.run_cell(mode, rate, seed, journal, cell_dir, timeout_s=args.timeout)
            print(_row(_cells(cell)), flush=True)
            problems = cell.failures()
            if problems:
                failing += 1
                if args.details:
                    details.append(f"== {cell.label}\n" + "\n".join(p.strip()[:600] for p in problems))
    wall = time.perf_counter() - started
    print(f"\n{failing} of {len(cells)} cells fail the matrix's assertions; {wall:.1f} s")
    if details:
        print("\n" + "\n".join(details))
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", help="comma-separated modes (default: all)")
    parser.add_argument("--seeds", default="1,2", help="seeds of the 30 %% cells (default 1,2)")
    parser.add_argument("--journal", default="sqlite,none", help="sqlite, none or both (default)")
    parser.add_argument(
        "--timeout", type=float, default=3.0, help="wall seconds per run before it counts as hung"
    )
    parser.add_argument("--details", action="store_true", help="after the table, why each failing cell fails")
    parser.add_argument(
        "--engine-tree", help="import bulk_engine from this directory instead of the checkout"
    )
    args = parser.parse_args()
    _use_tree(args.engine_tree)
    sys.exit(asyncio.run(_main(args)))


if __name__ == "__main__":
    main()
