"""A run's folder: checked usable before anything starts, locked while a run uses it, and on `--restart`
its previous run moved aside (never deleted), so that nothing a user has is lost."""
from __future__ import annotations

import contextlib
import datetime
import json
import os
import shutil
import socket
from pathlib import Path

LOCK = ".darts_jax.lock"
PREVIOUS = "previous-runs"


class WorkdirError(RuntimeError):
    pass


def prepare(workdir: str | Path, flag: str = "--workdir") -> Path:
    """Creates `workdir` if needed; refuses a path that is a file or a folder this process cannot write,
    naming the `flag` it came from."""
    workdir = Path(workdir)
    if workdir.exists() and not workdir.is_dir():
        raise WorkdirError(f"{flag} {workdir} is a file; give a folder (it is created if missing)")
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise WorkdirError(f"{flag} {workdir} cannot be created ({err.strerror}); choose another folder") from None
    if not os.access(workdir, os.W_OK | os.X_OK):
        raise WorkdirError(f"{flag} {workdir} is not writable by this user; choose another folder or fix its "
                           f"permissions")
    return workdir


@contextlib.contextmanager
def locked(workdir: Path, say=print):
    """Holds `workdir/.darts_jax.lock` (owner pid, host, start time) for the duration.

    A lock left by a run that died on this host (its pid no longer runs) is reported and taken over; a
    live owner, or one on another host (which cannot be checked from here), is refused.
    """
    path = workdir / LOCK
    owner = {"pid": os.getpid(), "host": socket.gethostname(),
             "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    while True:
        try:
            with open(path, "x") as handle:
                json.dump(owner, handle)
            break
        except FileExistsError:
            holder = _read_lock(path)
            if holder.get("host") == owner["host"] and isinstance(holder.get("pid"), int) \
                    and not _running(holder["pid"]):
                say(f"{path}: the run that held it (pid {holder['pid']}, started {holder.get('started')}) "
                    f"is no longer running; taking the lock over")
                path.unlink(missing_ok=True)
                continue
            raise WorkdirError(
                f"{workdir} is in use by pid {holder.get('pid')} on {holder.get('host')} (since "
                f"{holder.get('started')}): two runs on one folder would interleave their logs and checkpoints. "
                f"Wait for it, use another --workdir, or delete {path} if that run is gone") from None
    try:
        yield
    finally:
        if _read_lock(path).get("pid") == owner["pid"]:
            path.unlink(missing_ok=True)


def move_previous_run_aside(workdir: Path, say=print) -> Path | None:
    """--restart: everything of the previous run (checkpoints, logs, config, genotype, score files) moves to
    `workdir/previous-runs/<time>/`; returns that folder, or None when there was nothing to move."""
    entries = [p for p in workdir.iterdir() if p.name not in (PREVIOUS, LOCK)]
    if not entries:
        return None
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    aside = workdir / PREVIOUS / stamp
    aside.mkdir(parents=True)
    for entry in entries:
        shutil.move(entry, aside / entry.name)
    checkpoints = aside / "checkpoints"
    steps = sorted(int(p.name) for p in checkpoints.iterdir() if p.name.isdigit()) if checkpoints.is_dir() else []
    say(f"--restart: the previous run ({len(steps)} checkpoint(s), steps {steps}, and its logs) moved to {aside}; "
        f"this run starts afresh")
    return aside


def _read_lock(path: Path) -> dict:
    try:
        holder = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
