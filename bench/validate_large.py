"""Scenario V: validating large inline job files (issue 20 item 2: a 50 MB job in ≤ 20 s and ≤ 600 MB).

Generates job files of realistic shapes in a temporary folder (nothing is checked in), then validates each
in a fresh Python process per repeat, so the peak RSS printed is that process's own high-water mark
(``ru_maxrss``: interpreter and imports included). Shapes:

* ``create``: one create task with N campaigns, each with an ad set (targeting) and an ad with an inline
  click-to-Messenger creative — the tree a generator writes when it does not use ``repeat`` or a matrix;
* ``status``: one status task with a huge inline ``ids:`` list.

Each shape is written as YAML (block style, as people and ``yaml.dump`` write it) and as JSON (indented).
``--what load`` times ``load_job`` (read, schema, rules); ``--what cli`` times ``bulk-engine validate``
in-process (also the fingerprint and the plan). Medians of ``--repeat`` runs.

```bash
.venv/bin/python bench/validate_large.py                      # 50 MB, both formats, both shapes, cli
.venv/bin/python bench/validate_large.py --mb 10 --repeat 1 --shapes create --formats yaml
.venv/bin/python bench/validate_large.py --baseline 2b57563   # the same files with that commit's code too
```
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# One child process = one measurement. The editable install's finder would win over PYTHONPATH: drop it.
CHILD = r"""
import importlib.abc, json, resource, sys, time
tree, what, path = sys.argv[1:4]
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in type(f).__module__]
sys.path.insert(0, tree)
import contextlib, io
from bulk_engine import cli
from bulk_engine.operations import load_job
started = time.perf_counter()
if what == "load":
    load_job(path)
    code = 0
else:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = cli.main(["validate", path, "--account", "act_1"])
wall = time.perf_counter() - started
print(json.dumps({"wall_s": wall, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "exit": code, "module": cli.__file__}))
"""

CAMPAIGN = {
    "name": "Spring launch @I@ {n}",
    "objective": "OUTCOME_ENGAGEMENT",
    "special_ad_categories": [],
    "status": "PAUSED",
    "ad_sets": [
        {
            "name": "Messenger US @I@",
            "billing_event": "IMPRESSIONS",
            "optimization_goal": "CONVERSATIONS",
            "destination_type": "MESSENGER",
            "daily_budget": 1500,
            "promoted_object": {"page_id": "2000000001"},
            "targeting": {"geo_locations": {"countries": ["US", "CA"]}, "age_min": 18, "age_max": 65},
            "ads": [
                {
                    "name": "Ad @I@",
                    "creative_spec": {
                        "object_story_spec": {
                            "page_id": "2000000001",
                            "link_data": {
                                "link": "https://example.com/spring/@I@",
                                "message": "Spring is here: chat with us",
                                "call_to_action": {
                                    "type": "MESSAGE_PAGE",
                                    "value": {"app_destination": "MESSENGER"},
                                },
                            },
                        }
                    },
                }
            ],
        }
    ],
}


def _yaml_item(value: Any, indent: int) -> str:
    """``value`` as one YAML block-sequence item, indented for its place in the job."""
    import yaml

    text = yaml.safe_dump([value], sort_keys=False, default_flow_style=False, width=1000)
    pad = " " * indent
    return "".join(pad + line + "\n" for line in text.splitlines())


def generate(folder: Path, shape: str, fmt: str, size: int) -> Path:
    """A job file of about ``size`` bytes, written unit by unit (fast, flat memory)."""
    path = folder / f"{shape}-{size // 1_000_000}mb.{fmt}"
    header = {"version": 1, "job_id": f"bench-{shape}", "account_id": "act_1000000001"}
    if shape == "create":
        unit: Any = CAMPAIGN
        task_head = {"type": "create"}
        list_key = "campaigns"
    else:
        unit = "120210000000@I@"
        task_head = {"type": "status", "status": "PAUSED", "level": "ad"}
        list_key = "ids"
    with path.open("w", encoding="utf-8") as out:
        if fmt == "yaml":
            import yaml

            out.write(yaml.safe_dump(header, sort_keys=False))
            out.write("tasks:\n")
            out.write(_yaml_item(task_head, 0).rstrip("\n") + "\n")
            out.write(f"  {list_key}:\n")
            # ids are quoted, as Graph ids must be text (an unquoted 18-digit id is a YAML integer)
            template = f"  - '{unit}'\n" if isinstance(unit, str) else _yaml_item(unit, 2)
        else:
            head = json.dumps({**header, "tasks": [{**task_head, list_key: ["@LIST@"]}]}, indent=2)
            before, after = head.split('"@LIST@"')
            out.write(before.rstrip())
            body = json.dumps(unit, indent=2)
            template = "\n" + "\n".join("        " + line for line in body.splitlines())
            after = "\n" + after.lstrip("\n")
        written, i = 0, 0
        while written < size:
            chunk = template.replace("@I@", f"{i:06d}")
            if fmt == "json" and i:
                chunk = "," + chunk
            out.write(chunk)
            written += len(chunk)
            i += 1
        if fmt == "json":
            out.write(after)
    return path


def measure(tree: Path, what: str, path: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(tree), what, str(path)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    if proc.returncode != 0:
        raise SystemExit(f"the child failed ({tree}):\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def _baseline_tree(commit: str, folder: Path) -> Path:
    target = folder / f"tree-{commit}"
    target.mkdir()
    archive = subprocess.run(
        ["git", "archive", commit, "bulk_engine"], cwd=ROOT, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=50.0, help="size of each generated file (default 50)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per file and tree; the median is shown")
    parser.add_argument("--shapes", default="create,status")
    parser.add_argument("--formats", default="yaml,json")
    parser.add_argument("--what", choices=("load", "cli"), default="cli")
    parser.add_argument("--baseline", metavar="COMMIT", help="also measure this commit's bulk_engine")
    parser.add_argument(
        "--baseline-repeat", type=int, help="runs of the baseline (default --repeat; it takes minutes a run)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="validate-large-") as tmp:
        folder = Path(tmp)
        trees = [("this tree", ROOT, args.repeat)]
        if args.baseline:
            repeat = args.baseline_repeat or args.repeat
            trees.append((args.baseline, _baseline_tree(args.baseline, folder), repeat))
        print(f"validate ({args.what}), median of the runs shown, one fresh process per run")
        print(f"{'file':<22} {'MB':>6}  {'code':<10} {'runs':>4} {'wall s':>7} {'peak MB':>8}  exit")
        for shape in args.shapes.split(","):
            for fmt in args.formats.split(","):
                path = generate(folder, shape, fmt, int(args.mb * 1_000_000))
                size = path.stat().st_size / 1e6
                for label, tree, repeat in trees:
                    runs = [measure(tree, args.what, path) for _ in range(repeat)]
                    wall = statistics.median(r["wall_s"] for r in runs)
                    peak = statistics.median(r["peak_mb"] for r in runs)
                    codes = sorted({r["exit"] for r in runs})
                    print(
                        f"{path.name:<22} {size:6.1f}  {label:<10} {repeat:4} {wall:7.1f} {peak:8.0f}  {codes}"
                    )
                path.unlink()


if __name__ == "__main__":
    main()
