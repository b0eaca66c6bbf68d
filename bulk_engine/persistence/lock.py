"""One job, one runner: the per-(journal, job id) lock a :class:`~bulk_engine.persistence.session.JournalSession`
holds for its whole run.

Two runs of one job at once (a second ``bulk-engine run``, a zombie Airflow task) would each create what the
other has not journaled yet: duplicates. So a session takes the job's lock before it touches the journal and
gives it back in :meth:`~bulk_engine.persistence.session.JournalSession.close`; a second session is refused at
once with :class:`~bulk_engine.errors.JobLockedError` naming the holder.

A lock records its holder (:class:`LockOwner`: a random token per session, pid, host name and the process's
identity), when it was taken (``acquired_at``) and a heartbeat (``heartbeat_at``). A lock left behind by a
dead run is taken over, with a WARNING naming the dead holder (:func:`stale_reason`):

* **same host** — exact, whatever the time: the pid no longer exists (``os.kill(pid, 0)`` raises
  ``ProcessLookupError``; ``PermissionError`` means alive) or is a zombie; or the host rebooted since, or the
  pid now belongs to another process (its boot id / start time differ from the ones recorded); or the pid is
  this process's own but the token is not one of its live sessions (a restarted container reusing the pid);
* **another host** — a lease: the heartbeat is older than :data:`LEASE_TTL_S`. The holder's journal
  refreshes the heartbeat within the write transactions it makes anyway (plans, intents, outcomes) at most
  every :data:`REFRESH_EVERY_S`, and :meth:`~bulk_engine.persistence.journal.Journal.refresh_lock` refreshes
  it explicitly. Clocks of the hosts must agree to well within the lease.

A holder idle for longer than the lease (e.g. parked on a throttled account for minutes) can be taken over
from another host. It finds out before it sends anything more: the SQLite journal checks, in the same
transaction as every write of a locked job (the intent included), that the lock is still its own, and
raises :class:`~bulk_engine.errors.JobLockedError` instead of writing — so the intent is not committed and the
batch does not leave.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

from bulk_engine.errors import JobLockedError

__all__ = [
    "LEASE_TTL_S",
    "REFRESH_EVERY_S",
    "JobLock",
    "LockOwner",
    "held",
    "iso",
    "let_go",
    "locked_error",
    "log_takeover",
    "lost_error",
    "stale_reason",
]

LEASE_TTL_S = 60.0  # another host's lock without a heartbeat for this long is taken over
REFRESH_EVERY_S = 10.0  # the holder's journal writes a heartbeat at most this often (piggybacked on writes)

logger = logging.getLogger("bulk_engine.journal")

_LIVE: set[str] = set()  # tokens of the locks this process holds (a same-pid lock not in it is a dead one's)


def _process_identity(pid: int) -> str:
    """``"<boot id>:<start time in clock ticks>"`` of ``pid`` (Linux), ``""`` where unknown.

    Exact and clock-independent: tells a reused pid, or a pid from before a reboot, from the holder.
    """
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = stat.rsplit(")", 1)[1].split()[19]  # field 22 (starttime); the name in (...) may hold spaces
    except (OSError, IndexError):
        return ""
    return f"{boot}:{ticks}"


@dataclass(frozen=True)
class LockOwner:
    """Who holds (or asks for) a job's lock. ``token`` is unique per session: only it releases the lock."""

    token: str
    pid: int
    host: str
    process: str = ""  # _process_identity(pid) when known

    @classmethod
    def current(cls) -> LockOwner:
        """A new owner for a session of this process."""
        pid = os.getpid()
        return cls(uuid4().hex, pid, socket.gethostname(), _process_identity(pid))


@dataclass(frozen=True)
class JobLock:
    """A job's lock as the journal stores it (times are ``time.time()`` of the holder's host)."""

    job_id: str
    owner: LockOwner
    acquired_at: float
    heartbeat_at: float


def held(token: str) -> None:
    """Register a lock this process now holds (backends call it once the lock is theirs)."""
    _LIVE.add(token)


def let_go(token: str) -> None:
    """Forget a lock this process released (or lost)."""
    _LIVE.discard(token)


def _pid_state(pid: int) -> bool | None:
    """Whether ``pid`` runs (a zombie does not), ``None`` where that cannot be told (Windows)."""
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there
        return None
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    except OSError:
        return None
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")  # killed, not reaped yet: it will never release the lock


def stale_reason(lock: JobLock, *, now: float, ttl: float = LEASE_TTL_S) -> str | None:
    """Why ``lock`` was left by a dead run and may be taken over, or ``None``: its holder may be alive."""
    owner = lock.owner
    if owner.host == socket.gethostname():
        if owner.pid == os.getpid():
            if owner.token in _LIVE:
                return None
            return "this process does not hold it: an earlier process with the same pid left it"
        alive = _pid_state(owner.pid)
        if alive is False:
            return f"process {owner.pid} no longer exists"
        if alive and owner.process:
            current = _process_identity(owner.pid)
            if current and current.split(":")[0] != owner.process.split(":")[0]:
                return "the host rebooted since"
            if current and current != owner.process:
                return f"pid {owner.pid} now belongs to another process"
        if alive is not None:
            return None
    age = now - lock.heartbeat_at
    if age >= ttl:
        return f"no heartbeat for {age:.0f} s (lease {ttl:.0f} s)"
    return None


def log_takeover(location: str, lock: JobLock, reason: str) -> None:
    """The WARNING of a takeover, naming the dead holder (an operator may want to know why it died)."""
    logger.warning(
        "journal %s: job %s: taking over the lock left by a dead run (pid %d on host %s, since %s): %s",
        location,
        lock.job_id,
        lock.owner.pid,
        lock.owner.host,
        iso(lock.acquired_at),
        reason,
    )


def iso(ts: float) -> str:
    """``ts`` as ISO 8601 in UTC (hosts may be in different time zones)."""
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds")


def _who(owner: LockOwner) -> str:
    who = f"pid {owner.pid} on host {owner.host}"
    if owner.pid == os.getpid() and owner.host == socket.gethostname():
        return f"another session of this process ({who})"
    return who


def _since(lock: JobLock, now: float) -> str:
    return f"since {iso(lock.acquired_at)}, last heartbeat {max(0.0, now - lock.heartbeat_at):.0f} s ago"


def locked_error(location: str, lock: JobLock, *, now: float) -> JobLockedError:
    """The refusal of a second run, naming the holder and what to do."""
    owner = lock.owner
    return JobLockedError(
        f"journal {location}: job {lock.job_id!r} is being run by {_who(owner)} ({_since(lock, now)}); two "
        "runs of one job would create objects twice. Wait for it to finish, or stop it; a lock left by a "
        "dead process is taken over automatically.",
        job_id=lock.job_id,
        pid=owner.pid,
        host=owner.host,
        acquired_at=lock.acquired_at,
    )


def lost_error(location: str, job_id: str, holder: JobLock | None, *, now: float) -> JobLockedError:
    """This run's lock was taken over while it was idle (``holder``: who has it now, if anyone)."""
    by = (
        f"by {_who(holder.owner)} ({_since(holder, now)})"
        if holder is not None
        else "(that run has finished)"
    )
    return JobLockedError(
        f"journal {location}: job {job_id!r}: this run's lock was taken over {by} after this run wrote "
        "nothing for longer than its lease; stopped before sending anything more, so as not to create "
        "objects twice. Let that run finish the job, then resume it if anything is left.",
        job_id=job_id,
        pid=holder.owner.pid if holder is not None else None,
        host=holder.owner.host if holder is not None else None,
        acquired_at=holder.acquired_at if holder is not None else None,
    )
