"""How a run shows itself while it runs: a rich live view, plain lines, or JSON lines.

All three views read a :class:`~bulk_engine.reporting.recorder.RunRecorder` and are driven from the event
loop's thread only (``on_event`` for each engine event, ``tick`` a few times a second), so nothing is read
while it is being changed:

- :class:`LiveView` (a terminal): progress per operation kind with throughput and ETA, a table per ad
  account and BUC type (usage %, concurrency, batches in flight, parked until / time to regain access,
  waiting), a line per current wait (who, why, when it resumes), counters, and retries and throttles printed
  above the live area as they happen;
- :class:`LineView` (stdout is not a terminal): one timestamped line per throttle, wait, retry and notable
  message, and a progress line every ``progress_every_s`` seconds;
- :class:`JsonView` (``--log-format json``): one JSON object per line for every event (``event`` names:
  ``job_started``, ``batch_sent``, ``batch_done``, ``retry``, ``throttled``, ``waiting``, ``operation``,
  ``progress``, ``log``, ``message``, ``job_finished``…), with ``ts`` (UTC ISO 8601) and ``t`` (seconds since
  start).

Every view writes through its :class:`~bulk_engine.scrub.Scrubber` (the run's token, app secret and proof):
event fields carry Graph's error messages and retry reasons, which a server may fill with the request's
token, so each line is scrubbed where it is written (JSON: every key and value before encoding).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from bulk_engine.execution.events import (
    BatchDone,
    BatchSent,
    EngineEvent,
    OperationFinished,
    RetryScheduled,
    Throttled,
    Waiting,
)
from bulk_engine.scrub import Scrubber

from .advice import clock_time, describe_throttle, describe_wait, duration
from .recorder import PairView, RunRecorder, WaitView

__all__ = ["JsonView", "LineView", "LiveView", "View", "describe_retry", "make_view"]

RETRY_LINES_PER_TICK = 5
PACING_PCT = 85.0  # near the governor's ceiling: an idle pair is waiting for its window to free up


def describe_retry(event: RetryScheduled, time_scale: float = 1.0) -> str:
    return (
        f"retry {event.op_id} ({event.kind}, attempt {event.attempt + 1}) in "
        f"{event.delay_s / time_scale:.1f} s: {event.reason}"
    )


def _throttle_text(event: Throttled, recorder: RunRecorder) -> str:
    """The person's message for a throttle the recorder just recorded (wall-clock regain time)."""
    record = recorder.throttles[-1]
    return describe_throttle(
        event.account_id,
        event.buc_type,
        record.parked_s,
        event.code,
        event.subcode,
        event.usage_pct,
        resumes_at_epoch=record.resumes_at_epoch,
    )


def _wait_view(event: Waiting, recorder: RunRecorder) -> WaitView:
    """The recorder's state of the scope ``event`` (just recorded) is about."""
    return recorder.waits[recorder.wait_key(event)]


def _wait_text(wait: WaitView, now: float) -> str:
    """The person's message for a wait (its wall-clock end)."""
    return describe_wait(
        wait.scope,
        wait.account_id,
        wait.buc_type,
        wait.reason,
        wait.usage_pct,
        wait.remaining(now),
        resumes_at_epoch=wait.resumes_at_epoch,
    )


def _wait_label(wait: WaitView) -> str:
    """``all accounts (app)``, ``act_1 · every use case``, ``act_1 · ads_management``: the live view's column."""
    if wait.scope == "app":
        return "all accounts (app)"
    return f"{wait.account_id} · {wait.buc_type or 'every use case'}"


class View:
    """The interface the run session talks to; the base class prints nothing.

    ``scrubber``: what every line goes through before it is written (default: nothing to scrub).
    """

    def __init__(self, recorder: RunRecorder, title: str, *, scrubber: Scrubber | None = None) -> None:
        self.recorder = recorder
        self.scrub = scrubber if scrubber is not None else Scrubber(())
        self.title = self.scrub(title)
        recorder.listeners.append(self.on_event)

    def start(self) -> None:
        """The run is about to send."""

    def stop(self) -> None:
        """The run is over: leave the final state on screen."""

    def on_event(self, event: EngineEvent) -> None:
        """One engine event (already folded into the recorder)."""

    def tick(self) -> None:
        """Called a few times a second from the event loop."""

    def message(self, text: str, *, level: str = "info", event: str = "message", **fields: Any) -> None:
        """A notable message for a person (``fields`` are for machines)."""

    def log_record(self, record: logging.LogRecord) -> None:
        """A warning or error logged by the engine while the view is up."""


# --- rich live view ----------------------------------------------------------------------------------
class _RateColumn(ProgressColumn):
    """Operations per second, from rich's speed estimate."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.1f}/s" if speed else "", style="cyan")


class LiveView(View):
    def __init__(
        self,
        recorder: RunRecorder,
        title: str,
        console: Console | None = None,
        *,
        scrubber: Scrubber | None = None,
    ) -> None:
        super().__init__(recorder, title, scrubber=scrubber)
        self.console = console or Console()
        self.progress = Progress(
            TextColumn("{task.description:<16}"),
            BarColumn(bar_width=30),
            MofNCompleteColumn(),
            _RateColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            auto_refresh=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._total_task: TaskID | None = None
        self._live = Live(
            console=self.console,
            get_renderable=self._render,
            auto_refresh=False,
            transient=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._pending_retries: list[str] = []
        self._dropped_retries = 0
        self._started = False

    def start(self) -> None:
        self._sync_progress()
        self._live.start(refresh=True)
        self._started = True

    def stop(self) -> None:
        if self._started:
            self._flush_retries()
            self._sync_progress()
            self._live.refresh()
            self._live.stop()
            self._started = False

    def on_event(self, event: EngineEvent) -> None:
        if isinstance(event, Throttled):
            text = _throttle_text(event, self.recorder)
            self.console.print(f"[bold yellow]⏸ {escape(self.scrub(text))}[/]", highlight=False)
        elif isinstance(event, RetryScheduled):
            if len(self._pending_retries) < RETRY_LINES_PER_TICK:
                self._pending_retries.append(describe_retry(event, self.recorder.time_scale))
            else:
                self._dropped_retries += 1

    def tick(self) -> None:
        if not self._started:
            return
        self._flush_retries()
        self._sync_progress()
        self._live.refresh()

    def message(self, text: str, *, level: str = "info", event: str = "message", **fields: Any) -> None:
        style = {"error": "bold red", "warning": "yellow"}.get(level, "")
        text = escape(self.scrub(text))  # scrubbed before escaping: "[redacted]" is no markup tag
        self.console.print(f"[{style}]{text}[/]" if style else text, highlight=False)

    def log_record(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            self.message(f"{record.name}: {record.getMessage()}", level="error")

    def _flush_retries(self) -> None:
        for line in self._pending_retries:
            self.console.print(f"[dim]↻ {escape(self.scrub(line))}[/]", highlight=False)
        self._pending_retries.clear()
        if self._dropped_retries:
            self.console.print(f"[dim]↻ … and {self._dropped_retries} more retries[/]")
            self._dropped_retries = 0

    def _sync_progress(self) -> None:
        kinds = self.recorder.kinds
        for kind, state in kinds.items():
            task = self._tasks.get(kind)
            total = None if state.expected is None else max(state.expected, state.done)
            if task is None:
                task = self._tasks[kind] = self.progress.add_task(kind, total=total)
            self.progress.update(task, completed=state.done, total=total)
        known = all(state.expected is not None for state in kinds.values())
        done = sum(state.done for state in kinds.values())
        expected = sum(max(state.expected or 0, state.done) for state in kinds.values())
        if self._total_task is None:
            self._total_task = self.progress.add_task("all operations", total=None)
        self.progress.update(self._total_task, completed=done, total=expected if known and kinds else None)
        if not (known and kinds):  # update(total=None) keeps the old total: more work is planned from reads
            for row in self.progress.tasks:
                if row.id == self._total_task:
                    row.total = None

    def _render(self) -> RenderableType:
        rec = self.recorder
        head = Text.assemble((self.title, "bold"), ("  elapsed ", "dim"), (f"{rec.elapsed_s:,.1f} s", ""))
        counts = rec.counts()
        footer = Text.assemble(
            ("HTTP requests ", "dim"),
            (f"{rec.http_requests:,}", ""),
            ("  Graph calls ", "dim"),
            (f"{rec.graph_calls:,}", ""),
            ("  retries ", "dim"),
            (f"{rec.retries:,}", "yellow" if rec.retries else ""),
            ("  throttles ", "dim"),
            (f"{rec.throttle_events:,}", "bold yellow" if rec.throttle_events else ""),
            ("  failed ", "dim"),
            (f"{counts['failed']:,}", "bold red" if counts["failed"] else ""),
            ("  skipped ", "dim"),
            (f"{counts['skipped']:,}", "yellow" if counts["skipped"] else ""),
        )
        submitted, in_progress, sets_done = rec.set_counts()
        if submitted:  # the async backend: Meta works on request sets (docs/scale.md)
            footer.append_text(
                Text.assemble(
                    ("  request sets ", "dim"),
                    (f"{submitted:,} submitted / {in_progress:,} in progress / {sets_done:,} done", ""),
                )
            )
        parts: list[RenderableType] = [head, self.progress, self._pairs_table()]
        waits = self._waits_table()
        if waits is not None:
            parts.append(waits)
        return Group(*parts, footer)

    def _waits_table(self) -> Table | None:
        """A line per current wait: ``waiting  act_1 · ads_management  pacing: usage 97 % at the 97 % ceiling
        · resumes in 2 min 10 s (14:05:33)``; ``None`` when nothing waits."""
        waits = self.recorder.waiting()
        if not waits:
            return None
        now = self.recorder.now()
        table = Table.grid(padding=(0, 2))
        for _ in range(4):
            table.add_column(no_wrap=True)
        for wait in waits:
            table.add_row(
                Text("waiting", "bold yellow"),
                Text(self.scrub(_wait_label(wait)), "bold"),
                Text(self.scrub(wait.reason), "yellow"),
                Text(
                    f"· resumes in {duration(wait.remaining(now))} ({clock_time(wait.resumes_at_epoch)})",
                    "dim",
                ),
            )
        return table

    def _pairs_table(self) -> Table:
        table = Table(title=None, expand=False, box=None, pad_edge=False, header_style="bold")
        table.add_column("ad account", no_wrap=True)
        table.add_column("BUC type", no_wrap=True)
        table.add_column("usage", no_wrap=True)
        table.add_column("limit", justify="right")
        table.add_column("in flight", justify="right")
        table.add_column("state")
        now = self.recorder.now()
        wall = self.recorder.wall()
        for view in self.recorder.pairs.values():
            pct = view.usage_pct
            usage = Text("–" if pct is None else f"{_bar(pct)} {pct:>3.0f} %")
            if pct is not None and pct >= 90:
                usage.stylize("bold red")
            elif pct is not None and pct >= 75:
                usage.stylize("yellow")
            parked = view.parked_for(now)
            wait = self.recorder.wait_for(view.account_id, view.buc_type)
            if parked > 0:
                state = Text(f"parked {duration(parked)}, until {clock_time(wall + parked)}", "bold yellow")
            elif wait is not None:
                until = clock_time(wait.resumes_at_epoch)
                state = Text(f"waiting {duration(wait.remaining(now))}, until {until}", "yellow")
            elif view.in_flight:
                state = Text("sending", "green")
            elif pct is not None and pct >= PACING_PCT:
                state = Text("pacing: waiting for quota", "yellow")
            else:
                state = Text("idle", "dim")
            table.add_row(
                view.account_id, view.buc_type, usage, str(view.concurrency), str(view.in_flight), state
            )
        if not self.recorder.pairs:
            table.add_row("–", "–", "–", "–", "–", Text("waiting for the first batch", "dim"))
        return table


def _bar(pct: float, width: int = 8) -> str:
    filled = max(0, min(width, round(pct / 100 * width)))
    return "█" * filled + "░" * (width - filled)


def _pair_note(pair: PairView, now: float, wait: WaitView | None = None) -> str:
    """`` (parked 42 s)``, `` (waiting 30 s)`` or `` (pacing: waiting for quota)`` for a plain progress line."""
    parked = pair.parked_for(now)
    if parked > 0:
        return f" (parked {parked:.0f} s)"
    if wait is not None and wait.remaining(now) > 0:
        return f" (waiting {wait.remaining(now):.0f} s)"
    if not pair.in_flight and pair.usage_pct is not None and pair.usage_pct >= PACING_PCT:
        return " (pacing: waiting for quota)"
    return ""


# --- plain lines ---------------------------------------------------------------------------------------
class _StreamView(View):
    """A view that writes to a stream, with a progress record every ``progress_every_s`` seconds."""

    def __init__(
        self,
        recorder: RunRecorder,
        title: str,
        stream: TextIO | None = None,
        progress_every_s: float = 5.0,
        *,
        scrubber: Scrubber | None = None,
    ) -> None:
        super().__init__(recorder, title, scrubber=scrubber)
        self.stream = stream or sys.stdout
        self.progress_every_s = progress_every_s
        self._last_progress = recorder.now()

    def tick(self) -> None:
        if self.recorder.now() - self._last_progress >= self.progress_every_s:
            self._progress()

    def _progress(self) -> None:
        """Write one progress record (and set ``_last_progress``)."""


class LineView(_StreamView):
    """Timestamped lines for logs and pipes."""

    def _line(self, text: str) -> None:
        stamp = time.strftime("%H:%M:%S", time.localtime(self.recorder.wall()))
        self.stream.write(f"{stamp} [{self.recorder.elapsed_s:7.1f}s] {self.scrub(text)}\n")
        self.stream.flush()

    def start(self) -> None:
        self._line(f"{self.title}: started")

    def stop(self) -> None:
        self._progress_line(final=True)

    def on_event(self, event: EngineEvent) -> None:
        if isinstance(event, Throttled):
            self._line("THROTTLED " + _throttle_text(event, self.recorder))
        elif isinstance(event, Waiting):
            wait = _wait_view(event, self.recorder)
            self._line(f"WAITING [{wait.scope}] " + _wait_text(wait, self.recorder.now()))
        elif isinstance(event, RetryScheduled):
            self._line(describe_retry(event, self.recorder.time_scale))

    def _progress(self) -> None:
        self._progress_line()

    def _progress_line(self, *, final: bool = False) -> None:
        self._last_progress = self.recorder.now()
        rec = self.recorder
        expected = sum(max(k.expected or 0, k.done) for k in rec.kinds.values())
        counts = rec.counts()
        rate = rec.ops_done / rec.elapsed_s if rec.elapsed_s > 0 else 0.0
        usage = ", ".join(
            f"{p.account_id} {p.buc_type} {p.usage_pct:.0f}%"
            + _pair_note(p, rec.now(), rec.wait_for(p.account_id, p.buc_type))
            for p in rec.pairs.values()
            if p.usage_pct is not None
        )
        unknown = any(k.expected is None for k in rec.kinds.values())
        more = "+" if unknown and not final else ""  # more operations are planned from reads
        self._line(
            f"progress {rec.ops_done}/{expected or '?'}{more} operations ({counts['succeeded']} ok, "
            f"{counts['failed']} failed, {counts['skipped']} skipped), {rate:.1f} ops/s, "
            f"{rec.http_requests} HTTP requests, {rec.retries} retries, {rec.throttle_events} throttles"
            + (f"; usage: {usage}" if usage else "")
        )

    def message(self, text: str, *, level: str = "info", event: str = "message", **fields: Any) -> None:
        prefix = {"error": "ERROR ", "warning": "WARNING "}.get(level, "")
        for i, line in enumerate(text.splitlines() or [""]):
            self._line((prefix if i == 0 else "  ") + line)

    def log_record(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.name == "bulk_engine.runner" and "throttled" in message:
            return  # already shown, with the regain time, by on_event(Throttled)
        self._line(f"{record.levelname} {record.name}: {message}")


# --- JSON lines ----------------------------------------------------------------------------------------
class JsonView(_StreamView):
    """One JSON object per line (``--log-format json``)."""

    def emit(self, event: str, **fields: Any) -> None:
        wall = self.recorder.wall()
        record = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(wall)) + f".{int(wall * 1000) % 1000:03d}Z",
            "t": round(self.recorder.elapsed_s, 3),
            "event": event,
            **fields,
        }
        self.stream.write(self.scrub.dumps(record, separators=(",", ":")) + "\n")
        self.stream.flush()

    def start(self) -> None:
        self.emit(
            "job_started",
            title=self.title,
            expected={k: v.expected for k, v in self.recorder.kinds.items()},
        )

    def stop(self) -> None:
        self._progress()

    def on_event(self, event: EngineEvent) -> None:
        scale = self.recorder.time_scale
        if isinstance(event, OperationFinished):
            o = event.outcome
            self.emit(
                "operation",
                op_id=o.op_id,
                kind=o.kind,
                state=o.state.value,
                account_id=o.account_id,
                graph_id=o.graph_id,
                error_code=o.error.code if o.error else None,
                error_subcode=o.error.error_subcode if o.error else None,
                error_message=o.error.message if o.error else None,
                reason=o.reason,
                attempts=o.attempts,
            )
        elif isinstance(event, BatchSent):
            self.emit("batch_sent", account_id=event.account_id, buc_type=event.buc_type, calls=event.calls)
        elif isinstance(event, BatchDone):
            self.emit(
                "batch_done",
                account_id=event.account_id,
                buc_type=event.buc_type,
                calls=event.calls,
                http_status=event.http_status,
                usage_pct=event.usage_pct,
                parked_s=round(event.parked_s / scale, 3),
                concurrency=event.concurrency,
            )
        elif isinstance(event, Throttled):
            record = self.recorder.throttles[-1]
            self.emit(
                "throttled",
                account_id=event.account_id,
                buc_type=event.buc_type,
                code=event.code,
                subcode=event.subcode,
                usage_pct=event.usage_pct,
                parked_s=round(record.parked_s, 3),
                resumes_at=record.to_dict()["resumes_at"],
                message=_throttle_text(event, self.recorder),
            )
        elif isinstance(event, Waiting):
            wait = _wait_view(event, self.recorder)
            now = self.recorder.now()
            self.emit(
                "waiting",
                scope=wait.scope,
                account_id=wait.account_id,
                buc_type=wait.buc_type,
                reason=wait.reason,
                usage_pct=wait.usage_pct,
                wait_s=round(wait.remaining(now), 3),
                resumes_at=wait.current(now)["resumes_at"],
                message=_wait_text(wait, now),
            )
        elif isinstance(event, RetryScheduled):
            self.emit(
                "retry",
                op_id=event.op_id,
                kind=event.kind,
                account_id=event.account_id,
                attempt=event.attempt + 1,
                delay_s=round(event.delay_s / scale, 3),
                reason=event.reason,
            )

    def _progress(self) -> None:
        self._last_progress = self.recorder.now()
        rec = self.recorder
        now = rec.now()
        self.emit(
            "progress",
            done=rec.ops_done,
            expected=sum(max(k.expected or 0, k.done) for k in rec.kinds.values()),
            counts=rec.counts(),
            kinds={k: {"done": v.done, "expected": v.expected} for k, v in rec.kinds.items()},
            http_requests=rec.http_requests,
            graph_calls=rec.graph_calls,
            retries=rec.retries,
            throttle_events=rec.throttle_events,
            accounts=[
                {
                    "account_id": p.account_id,
                    "buc_type": p.buc_type,
                    "usage_pct": p.usage_pct,
                    "parked_s": round(p.parked_for(now), 3),
                    "in_flight": p.in_flight,
                }
                for p in rec.pairs.values()
            ],
            waiting=[wait.current(now) for wait in rec.waiting()],
        )

    def message(self, text: str, *, level: str = "info", event: str = "message", **fields: Any) -> None:
        self.emit(event, level=level, message=text, **fields)

    def log_record(self, record: logging.LogRecord) -> None:
        self.emit("log", level=record.levelname.lower(), logger=record.name, message=record.getMessage())


def make_view(
    recorder: RunRecorder,
    title: str,
    *,
    log_format: str,
    stream: TextIO | None = None,
    is_terminal: Callable[[], bool] | None = None,
    scrubber: Scrubber | None = None,
) -> View:
    """``json`` → :class:`JsonView`; ``text`` → :class:`LiveView` on a terminal, else :class:`LineView`.

    ``scrubber`` scrubs every line the view writes (the run's secrets).
    """
    out = stream or sys.stdout
    if log_format == "json":
        return JsonView(recorder, title, out, scrubber=scrubber)
    terminal = is_terminal() if is_terminal is not None else out.isatty()
    if terminal:
        return LiveView(recorder, title, Console(file=out), scrubber=scrubber)
    return LineView(recorder, title, out, scrubber=scrubber)
