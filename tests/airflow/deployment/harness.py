"""A real Airflow deployment for one test: api-server, scheduler, dag-processor and triggerer as processes.

Why processes and not ``dag.test()``: deferral, the triggerer, the executor's task processes, retries after
a killed task and the REST API only meet in a deployment. Everything binds to 127.0.0.1 on free ports,
lives in a temporary ``AIRFLOW_HOME`` (SQLite, LocalExecutor) and is started in its own session, so
:meth:`Deployment.stop` can find and kill every descendant — also the task processes, which the task
supervisor moves into process groups of their own — by session id, even after a failure.

Every wait is bounded (:func:`wait_for`) and fails with the tails of the component and task logs.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
COMPONENTS: dict[str, tuple[str, ...]] = {
    "api-server": ("api-server",),  # port and host come from [api] in the environment
    "scheduler": ("scheduler", "--skip-serve-logs"),
    "dag-processor": ("dag-processor",),
    "triggerer": ("triggerer", "--skip-serve-logs"),
}
HEALTH_KEYS = ("metadatabase", "scheduler", "triggerer", "dag_processor")
USER = "deploy"
LOG_TAIL_LINES = 40


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    what: str,
    probe: Callable[[], T | None],
    timeout_s: float,
    diagnostics: Callable[[], str] = lambda: "",
    interval_s: float = 0.5,
) -> T:
    """Poll ``probe`` until it returns something truthy; past ``timeout_s`` fail with ``diagnostics()``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}\n{diagnostics()}")
        time.sleep(interval_s)


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError as err:
        return f"<cannot read: {err}>"
    return "\n".join(text[-lines:])


def _session_of(pid: int) -> int | None:
    """The session id of ``pid`` (``/proc/<pid>/stat`` field 6), ``None`` if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) "; comm may hold spaces
    if fields[0] in ("Z", "X"):  # a zombie has nothing left to kill; its parent reaps it
        return None
    return int(fields[3])


def processes_in(sessions: Iterable[int]) -> list[int]:
    """Live processes (not zombies) whose session is one of ``sessions``: what a deployment left running."""
    wanted = set(sessions)
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _session_of(int(entry.name)) in wanted:
            found.append(int(entry.name))
    return sorted(found)


class Deployment:
    """One Airflow deployment in ``home`` serving the DAGs of ``dags_folder``; ``extra_env`` (connections)
    is given to every component, and through the executor to every task process."""

    def __init__(self, home: Path, dags_folder: Path, extra_env: Mapping[str, str]) -> None:
        self.home = home
        self.dags_folder = dags_folder
        self.extra_env = dict(extra_env)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.password = secrets.token_urlsafe(16)
        self.logs = home / "components"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._token: str | None = None
        # One value per deployment: every component must sign and check JWTs (and encrypt) alike.
        self._secrets = {
            "jwt": secrets.token_urlsafe(64),
            "api": secrets.token_urlsafe(32),
        }  # HS512: 64+ bytes
        self._ports = {"worker_logs": free_port(), "trigger_logs": free_port()}
        from cryptography.fernet import Fernet  # an Airflow dependency: there is no Airflow without it

        self._fernet = Fernet.generate_key().decode()
        # Only 127.0.0.1 is ever contacted: no proxy from the environment may see these calls.
        self._http = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # --- environment -------------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        """The components' environment: the caller's minus any Airflow or proxy settings, plus ours."""
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("AIRFLOW") and "proxy" not in k.lower() and not k.startswith("PYTEST")
        }
        home = self.home
        settings = {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__FERNET_KEY": self._fernet,
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": self._secrets["jwt"],
            "AIRFLOW__API__SECRET_KEY": self._secrets["api"],
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self._ports["worker_logs"]),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self._ports["trigger_logs"]),
            "AIRFLOW__LOGGING__COLORED_CONSOLE_LOG": "False",
            # Fast enough for a test: the DAGs are found within seconds, loops sleep little.
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "2",
            "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL": "1",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "60",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "0",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
        return {**base, **settings, **self.extra_env}

    # --- life cycle --------------------------------------------------------------------------------
    def start(self, timeout_s: float = 180.0) -> None:
        """Migrate the database, start the four components and wait until they all report healthy."""
        self.logs.mkdir(parents=True, exist_ok=True)
        (self.home / "passwords.json").write_text(json.dumps({USER: self.password}))
        env = self.env()
        self._run_cli(("db", "migrate"), env, timeout_s=timeout_s)
        for name, args in COMPONENTS.items():
            with (self.logs / f"{name}.log").open("wb") as log:  # the child keeps its own descriptor
                self.procs[name] = subprocess.Popen(
                    [AIRFLOW, *args],
                    env=env,
                    cwd=self.home,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own session: stop() kills every descendant by session id
                )
        wait_for("every component to report healthy", self._healthy, timeout_s, self.diagnostics)

    def _run_cli(self, args: tuple[str, ...], env: Mapping[str, str], timeout_s: float) -> None:
        log_path = self.logs / f"{'-'.join(args)}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [AIRFLOW, *args],
                env=dict(env),
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self.procs["-".join(args)] = proc
            try:
                code = proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                code = None
        if code != 0:
            raise AssertionError(f"airflow {' '.join(args)} ended with {code}:\n{tail(log_path)}")

    def alive(self) -> list[str]:
        """The components still running (a crashed one makes every later wait pointless)."""
        return [name for name in COMPONENTS if name in self.procs and self.procs[name].poll() is None]

    def _healthy(self) -> bool:
        dead = [name for name in COMPONENTS if self.procs[name].poll() is not None]
        if dead:
            raise AssertionError(f"{dead} exited during start-up\n{self.diagnostics()}")
        try:
            health = self.api("GET", "/api/v2/monitor/health", auth=False)
        except (OSError, AssertionError):
            return False
        return all((health.get(key) or {}).get("status") == "healthy" for key in HEALTH_KEYS)

    def sessions(self) -> set[int]:
        """Session ids of everything this deployment started (each ``Popen`` leads its own session)."""
        return {proc.pid for proc in self.procs.values()}

    def stop(self, grace_s: float = 5.0) -> list[int]:
        """Terminate every process of every session started here, SIGKILL what outlives ``grace_s``.

        Returns the pids that were still running when it began (for the test's log). Idempotent."""
        sessions = self.sessions()
        running = processes_in(sessions)
        for pid in running:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while processes_in(sessions) and time.monotonic() < deadline:
            time.sleep(0.2)
        for _ in range(50):  # SIGKILL is final; a few rounds catch processes forked meanwhile
            left = processes_in(sessions)
            if not left:
                break
            for pid in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
        for proc in self.procs.values():  # reap our direct children
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        return running

    # --- REST API ----------------------------------------------------------------------------------
    def token(self) -> str:
        """A JWT of the simple auth manager (``POST /auth/token`` with the user's password)."""
        if self._token is None:
            answer = self.api(
                "POST", "/auth/token", {"username": USER, "password": self.password}, auth=False
            )
            self._token = str(answer["access_token"])
        return self._token

    def api(
        self, method: str, path: str, body: Any = None, *, auth: bool = True, timeout_s: float = 15
    ) -> Any:
        """One call to the api-server; answers the decoded JSON, raises AssertionError on HTTP errors."""
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with self._http.open(request, timeout=timeout_s) as answer:
                text = answer.read()
        except urllib.error.HTTPError as err:
            raise AssertionError(f"{method} {path}: HTTP {err.code} {err.read()[:2000]!r}") from None
        return json.loads(text) if text else None

    def task_instance(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        return dict(self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"))

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}"))

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
        return self.api("GET", path)["value"]

    def dag_is_parsed(self, dag_id: str) -> bool:
        try:
            self.api("GET", f"/api/v2/dags/{dag_id}")
        except AssertionError:
            return False
        return True

    def trigger(self, dag_id: str, run_id: str, conf: Mapping[str, Any]) -> dict[str, Any]:
        """Unpause ``dag_id`` and trigger a manual run ``run_id`` with ``conf``."""
        self.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        body = {"dag_run_id": run_id, "logical_date": None, "conf": dict(conf)}
        return dict(self.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", body))

    # --- diagnostics -------------------------------------------------------------------------------
    def task_logs(self, dag_id: str | None = None) -> list[Path]:
        pattern = f"dag_id={dag_id}/**/*.log" if dag_id else "dag_id=*/**/*.log"
        return sorted((self.home / "logs").glob(pattern))

    def component_log(self, name: str, needle: str) -> list[str]:
        """Lines of a component's log (``scheduler``, ``triggerer``, …) that contain ``needle``."""
        path = self.logs / f"{name}.log"
        if not path.is_file():
            return []
        return [line for line in path.read_text(errors="replace").splitlines() if needle in line]

    def log_events(self, dag_id: str, run_id: str, needle: str) -> list[str]:
        """The task log events (every try, trigger logs included) of a run whose text contains ``needle``."""
        found = []
        for path in self.task_logs(dag_id):
            if f"run_id={run_id}" not in path.parts:
                continue
            for line in path.read_text(errors="replace").splitlines():
                try:
                    event = str(json.loads(line).get("event", ""))
                except ValueError:
                    event = line
                if needle in event:
                    found.append(event)
        return found

    def diagnostics(self, dag_id: str | None = None) -> str:
        """Tails of every component's log and of the task logs: what a failed deadline reports."""
        parts = [f"alive: {self.alive()} of {list(COMPONENTS)}"]
        for path in sorted(self.logs.glob("*.log")):
            parts.append(f"--- {path.name} ---\n{tail(path)}")
        for path in self.task_logs(dag_id):
            parts.append(f"--- {path.relative_to(self.home)} ---\n{tail(path, 60)}")
        return "\n".join(parts)
