"""Process bookkeeping for whole-stack tests: free ports, process trees, orphan checks (Linux /proc)."""
from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stat(pid: int) -> tuple[int, int, int, str] | None:
    """(ppid, session id, start time, state) of a live process, or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # the command name may contain spaces
    state, ppid, session, start = fields[0], int(fields[1]), int(fields[3]), int(fields[19])
    return ppid, session, start, state


Proc = tuple[int, int]  # (pid, start time): a pid alone may be reused


def _all() -> dict[int, tuple[int, int, int, str]]:
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            table[int(entry)] = st
    return table


def process_tree(root: int) -> set[Proc]:
    """``root`` and every descendant, including those that started their own session."""
    table = _all()
    found, frontier = set(), [root]
    while frontier:
        pid = frontier.pop()
        if pid in table and (pid, table[pid][2]) not in found:
            found.add((pid, table[pid][2]))
            frontier.extend(child for child, st in table.items() if st[0] == pid)
    return found


def session_members(session: int) -> set[Proc]:
    return {(pid, st[2]) for pid, st in _all().items() if st[1] == session}


def alive(procs: set[Proc]) -> set[Proc]:
    """The processes of ``procs`` that still run (zombies count as gone)."""
    live = set()
    for pid, start in procs:
        st = _stat(pid)
        if st is not None and st[2] == start and st[3] != "Z":
            live.add((pid, start))
    return live


def describe(procs: set[Proc]) -> str:
    lines = []
    for pid, _ in sorted(procs):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            cmd = "?"
        lines.append(f"  pid {pid}: {cmd}")
    return "\n".join(lines)


def wait_gone(procs: set[Proc], timeout: float) -> set[Proc]:
    deadline = time.monotonic() + timeout
    while (left := alive(procs)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def kill_all(procs: set[Proc]) -> None:
    for pid, _ in alive(procs):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
