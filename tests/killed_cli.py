"""``bulk-engine`` as a subprocess with JSON logs, SIGKILLed at a chosen line: the crash/resume tests of image
and video uploads and the assets acceptance run share it; each says when to kill with a predicate over the
JSON lines (arming on an op id, counting events)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

Event = dict[str, Any]


def run_killed(
    args: list[str],
    token: str,
    stderr_path: Path,
    kill_when: Callable[[Event], bool] | None,
    timeout_s: float = 60.0,
) -> tuple[int | None, list[Event]]:
    """``python -m bulk_engine ARGS`` (the token in the environment, never argv), SIGKILLed at the first JSON
    line ``kill_when`` accepts (``None``: runs to the end). Returns the exit code (``None``: killed) and the JSON
    lines seen; stderr is appended to ``stderr_path``. A watchdog bounds the whole run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("META_")}
    env.update(META_ACCESS_TOKEN=token, PYTHONUNBUFFERED="1")
    events: list[Event] = []
    with stderr_path.open("a") as errors:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bulk_engine", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            env=env,
        )
        watchdog = threading.Timer(timeout_s, proc.kill)
        watchdog.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if not line.startswith("{"):
                    continue
                event = json.loads(line)
                events.append(event)
                if kill_when is not None and kill_when(event):
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    return None, events
            return proc.wait(timeout=timeout_s), events
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
