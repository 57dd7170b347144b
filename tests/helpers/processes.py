"""Process bookkeeping for whole-stack tests: free ports, process trees, orphan checks (Linux /proc)."""
from __future__ import annotations

import os
import random
import signal
import socket
import time
from pathlib import Path

_handed_out: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_port() -> int:
    """A port nothing listens on, for a server the test starts next, taken below the kernel's ephemeral range.

    A port the kernel picks for ``bind(0)`` comes from the ephemeral range, which every outgoing connection
    (PostgreSQL, Redis, HTTP) also draws from: between this check and the server's own bind, one of them can
    take it, and the server exits with "address in use" (seen once in CI, a whole-stack start on a busy
    machine). Below that range only listeners bind. Never the same port twice in one process."""
    low = max(1024, _ephemeral_low() - 12000)
    high = low + 11999
    for _ in range(500):
        port = random.randint(low, high)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:  # a crowded range: the kernel's pick
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
