"""The keeper: a dedicated process that owns the worker, and makes sure all of it ends.

    python -I -S _keeper.py CONFIG_JSON

Started by :func:`minialexnet.exercises.sandbox.run_tests` (standard library only). It

1. makes itself a *child subreaper* (Linux ``prctl(PR_SET_CHILD_SUBREAPER, 1)``): every
   process the worker starts that is orphaned (a double fork, a daemon that called
   ``setsid``) is reparented to the keeper instead of to init, so it stays findable;
2. starts the worker in a new session, with the channel to the judge as its stdin and
   stdout, its stderr a pipe the keeper drains (the first ``output_limit`` bytes kept),
   resource limits (address space, file size, no core files; processes too when it drops
   to an unprivileged user, which it does when started as root), and, where the kernel
   has it, Landlock (:mod:`minialexnet.exercises._landlock`): read only the Python
   installation, NumPy and the student's copy, write only its scratch folder;
3. waits until its stdin (a pipe from the grader) is closed: the judge is done or the time
   limit is reached, or until its own last-resort deadline;
4. kills every descendant, found by walking ``/proc`` (parent links, and the worker's
   session) and killing (SIGKILL) in rounds until none is left, reaping each one;
5. writes one JSON line to stdout: the worker's captured output, its byte count, its exit
   status, whether the subreaper could be set, how many processes were killed.

Only then does the grader read the judge's results: nothing the student started is alive.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import resource
import select
import signal
import subprocess
import sys
import time
from typing import Any

_PR_SET_CHILD_SUBREAPER = 36


def _set_subreaper() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _processes() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, session id, state) of every process in /proc."""
    found = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return found
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read().decode("ascii", "replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 3:
            found[int(name)] = (int(fields[1]), int(fields[3]), fields[0])
    return found


def _descendants(root: int, session: int) -> list[int]:
    """Live processes below ``root`` (parent links) or in ``session``."""
    table = _processes()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    found |= {pid for pid, (_, sid, _) in table.items() if sid == session and pid != root}
    return sorted(pid for pid in found if table.get(pid, (0, 0, "Z"))[2] not in ("Z", "X"))


def _reap(status: dict[str, Any], worker: int) -> None:
    while True:
        try:
            pid, code = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if pid == worker:
            status["returncode"] = os.waitstatus_to_exitcode(code)


def _kill_all(worker: int, status: dict[str, Any], subreaper: bool) -> None:
    me, killed = os.getpid(), set()
    for _ in range(500):
        pids = _descendants(me, worker) if sys.platform.startswith("linux") else []
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except (ProcessLookupError, PermissionError):
                pass
        _reap(status, worker)
        time.sleep(0.005)
    if not subreaper:  # no /proc tree to trust: the worker's session at least
        try:
            os.killpg(worker, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    end = time.monotonic() + 5
    while time.monotonic() < end:  # reap what is left (zombies of killed processes)
        try:
            pid, code = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        if pid == worker:
            status["returncode"] = os.waitstatus_to_exitcode(code)
    status["killed"] = len(killed)


def _load_landlock(path: str | None) -> Any:
    if not path:
        return None
    import importlib.util

    spec = importlib.util.spec_from_file_location("_minialexnet_landlock", path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _limits(config: dict[str, Any], landlock: Any) -> Any:
    """What the worker's child process does just before exec (after the user is dropped)."""

    def apply() -> None:
        for name, value in config["rlimits"].items():
            limit = getattr(resource, name, None)
            if limit is None:
                continue
            try:
                resource.setrlimit(limit, (value, value))
            except (ValueError, OSError):
                pass
        if landlock is not None and landlock.abi() > 0:  # there, it must hold: else no worker
            if not landlock.restrict(config["read"], config["write"]):
                raise OSError("Landlock could not be applied to the worker")

    return apply


def main(argv: list[str]) -> int:
    config = json.loads(argv[0])
    subreaper = _set_subreaper()
    out_r, out_w = os.pipe()
    drop: dict[str, Any] = {}
    if config.get("user") is not None:
        drop = {"user": config["user"], "group": config["group"], "extra_groups": []}
    landlock = _load_landlock(config.get("landlock"))
    status: dict[str, Any] = {
        "subreaper": subreaper,
        "landlock": landlock.abi() if landlock is not None else 0,
        "user": config.get("user"),
        "returncode": None,
        "killed": 0,
    }
    try:
        proc = subprocess.Popen(
            config["command"],
            stdin=config["fd_in"],
            stdout=config["fd_out"],
            stderr=out_w,
            cwd=config["cwd"],
            env=config["env"],
            start_new_session=True,
            preexec_fn=_limits(config, landlock),
            **drop,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        status["error"] = f"the worker could not be started: {exc}"
        sys.stdout.write(json.dumps(dict(status, output="", output_bytes=0)) + "\n")
        return 1
    for fd in (out_w, config["fd_in"], config["fd_out"]):
        os.close(fd)
    limit, head, total = int(config["output_limit"]), bytearray(), 0
    deadline = time.monotonic() + float(config["max_seconds"])
    watching = [0, out_r]
    while 0 in watching and time.monotonic() < deadline:
        try:
            ready, _, _ = select.select(watching, [], [], 0.2)
        except InterruptedError:
            continue
        for fd in ready:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                watching.remove(fd)
            elif fd == out_r:
                total += len(chunk)
                head += chunk[: max(0, limit - len(head))]
        _reap(status, proc.pid)
    _kill_all(proc.pid, status, subreaper)
    while True:  # what the worker wrote before it died (every writer is gone now)
        try:
            ready, _, _ = select.select([out_r], [], [], 0.5)
            chunk = os.read(out_r, 1 << 16) if ready else b""
        except OSError as exc:
            if exc.errno == errno.EINTR:
                continue
            chunk = b""
        if not chunk:
            break
        total += len(chunk)
        head += chunk[: max(0, limit - len(head))]
    status.update(output=head.decode("utf-8", "replace"), output_bytes=total)
    status["left"] = len(_descendants(os.getpid(), proc.pid)) if subreaper else None
    sys.stdout.write(json.dumps(status) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
