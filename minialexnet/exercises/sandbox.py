r"""Grade a student's code by running the grading tests in a *judge* and the code in a *worker*.

``run_tests(student, tests, root)`` separates computing from judging::

      grader (run_tests)                          results: JUnit XML, read only after
        |  \                                       every process of the worker is gone
        |   \-- keeper (own session, child subreaper) -- kills all below it at the end
        |          |
        |          \-- worker: python -I -S, a copy of the student's package and NumPy
        |               only, unprivileged user where the grader is root, Landlock,
        |               rlimits; its prints go to the keeper (capped, never graded)
        |                  ^  calls: module.function(args) / handle.method(args)
        |                  |  (framed JSON + raw array bytes, never pickle: .wire)
        |                  v  values: arrays, numbers, tuples...; handles; errors
        \-- judge: pytest on fresh copies of the tests (hidden ones too) in a 0700
              folder; ``minialexnet`` is the INSTRUCTOR's package (``ref``), the
              student's code is reached through ``student_module(...)`` proxies
              (:mod:`.remote`); every comparison and the JUnit file are made here

* the judge (``python -m pytest`` with the plugin :mod:`._sandbox_plugin`) never
  imports the student's code; what the worker sends back is validated data (numeric
  or bool arrays, capped at :data:`.wire.MAX_PAYLOAD` per reply), an opaque handle, or an
  exception's text that fails the test that made the call;
* the worker (:mod:`._worker`) only computes; it cannot read the tests, the results
  or the instructor's checkout where it runs confined (:func:`confinement`: Landlock on
  Linux 5.13+, or an unprivileged user when the grader is root);
* the keeper (:mod:`._keeper`) starts the worker and, when the judge is done or the time
  limit is reached, kills the worker and every process it started, including daemons
  that called ``setsid`` or double-forked (they were reparented to the keeper), then
  reports the worker's captured output;
* at the time limit the judge's process group is killed too; nothing blocks on a pipe
  past it (the judge's output is drained by a thread, the worker's by the keeper).

Per-test results come from the judge's JUnit XML file; a run that produced none (time
limit, crash, an exception at import) gets a ``problem`` saying why, naming the test that
was running. The worker's start-up (about 0.2 s: Python and NumPy, no pytest) is paid
once per run.

``isolate=False`` (a student's self-check: ``student`` is its own ``root``) runs the old
way, in one process with the copy's package imported by the tests, which is all a
self-check needs; its ``ref`` replays recorded reference calls (:mod:`.fixtures`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import _landlock

__all__ = [
    "DEFAULT_OUTPUT_LIMIT",
    "GRADE_SALT_ENV",
    "TestOutcome",
    "SandboxResult",
    "confinement",
    "copy_reference_package",
    "run_tests",
]

DEFAULT_OUTPUT_LIMIT = 64 * 1024
"""Bytes of a run's output (stdout and stderr together) kept; the rest is counted, not kept."""

DEFAULT_WORKER_USER = "nobody"
"""The unprivileged user the worker runs as when the grader runs as root."""
DEFAULT_MEMORY_LIMIT = 4 << 30
"""The worker's address-space limit (bytes): room for NumPy, not for a runaway allocation."""

PACKAGE = "minialexnet"
_PLUGIN = "_minialexnet_sandbox_plugin"
_DETAILS_LIMIT = 4000  # characters of one failure's traceback kept
_CACHES = shutil.ignore_patterns("__pycache__", "*.pyc")
# the grader's own pytest settings and paths must not reach the graded run
_SYSTEM_READ = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/proc", "/sys")
_DEVICES = ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random", "/dev/full")
_THREADS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
GRADE_SALT_ENV = "MINIALEXNET_GRADE_SALT"
"""The judge's grading salt (``run_tests(salt=...)``), read by the tests' ``generator``."""
_DROPPED_ENV = {
    "PYTHONPATH",
    "PYTEST_ADDOPTS",
    "PYTEST_PLUGINS",
    "PYTHONSTARTUP",
    GRADE_SALT_ENV,  # only the ``salt`` argument sets it
}


@dataclass(frozen=True)
class TestOutcome:
    """One test's result, as pytest's JUnit XML reports it.

    Attributes:
        nodeid: pytest's id, ``tests/exercises/test_lrn_forward.py::test_window[cpu]``
            (for a file that failed to import, the file's dotted name).
        outcome: ``passed``, ``failed``, ``error`` (in setup or collection) or ``skipped``.
        message: the failure's message, first line ('' when passed).
        details: the failure's traceback as pytest printed it (``--tb=short``), capped.
        seconds: the test's duration.
    """

    __test__ = False  # not a pytest test class, whatever its name

    nodeid: str
    outcome: str
    message: str = ""
    details: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the test passed or was skipped."""
        return self.outcome in ("passed", "skipped")


@dataclass(frozen=True)
class SandboxResult:
    """What one sandboxed pytest run gave.

    Attributes:
        tests: each test's outcome, in the order pytest ran them.
        returncode: pytest's exit status (None when the run was killed at the time limit).
        timed_out: the run was killed at the time limit.
        seconds: wall-clock time of the run.
        output: the first ``output_limit`` bytes of its output, decoded.
        output_bytes: how many bytes it wrote in all.
        problem: why the run as a whole failed, when it did (time limit, the package not
            importable or not the student's, a crash before results were written); None
            when pytest ran the tests and reported each.
        worker_output, worker_output_bytes: what the student's code printed in the worker
            (the head, and the count): for a self-check or debugging, never for a grade
            (it could carry anything the code found).
    """

    tests: tuple[TestOutcome, ...]
    returncode: int | None
    timed_out: bool
    seconds: float
    output: str
    output_bytes: int
    problem: str | None = None
    worker_output: str = ""
    worker_output_bytes: int = 0

    @property
    def passed(self) -> bool:
        """No problem, at least one test passed, and none failed."""
        return (
            self.problem is None
            and any(t.outcome == "passed" for t in self.tests)
            and all(t.ok for t in self.tests)
        )

    @property
    def failures(self) -> tuple[TestOutcome, ...]:
        """The tests that failed or errored."""
        return tuple(t for t in self.tests if not t.ok)

    def reason(self) -> str:
        """One line: why this run does not pass ('' when it does)."""
        if self.problem:
            return self.problem
        if self.failures:
            first = self.failures[0]
            return f"{first.nodeid}: {first.message or first.outcome}"
        if not any(t.outcome == "passed" for t in self.tests):
            return "no test ran (all skipped or none collected)"
        return ""


# ---------------------------------------------------------------- preparing the folder


def copy_reference_package(root: Path, dest: Path, package: str = PACKAGE) -> Path:
    """Copy ``root/package`` to ``dest/<package>_reference`` (no caches); return the copy."""
    source = Path(root) / package
    if not (source / "__init__.py").is_file():
        raise FileNotFoundError(f"no {package} package in {root} (looked for {source}/__init__.py)")
    target = Path(dest) / f"{package}_reference"
    shutil.copytree(source, target, ignore=_CACHES)
    return target


def _copy_package(student: Path, dest: Path, package: str = PACKAGE) -> None:
    """Copy ``student/package`` (when there is one) to ``dest/package``: no caches, links kept."""
    if (student / package).is_dir():
        shutil.copytree(student / package, dest / package, ignore=_CACHES, symlinks=True)


def _split_test(spec: str) -> tuple[str, str]:
    """``'tests/x.py::test_a'`` -> ``('tests/x.py', '::test_a')``; a plain path -> (path, '')."""
    path, sep, rest = spec.partition("::")
    return path, (sep + rest if sep else "")


def _copy_tests(root: Path, tests: Sequence[str], support: Sequence[str], work: Path) -> list[str]:
    """Copy the test files, the support files and the test folders' helpers from root into work.

    Returns the pytest arguments (relative paths, node ids kept).
    """
    root = Path(root).resolve()
    args, folders = [], set()
    for spec in [*tests, *support]:
        rel, node = _split_test(spec)
        source = (root / rel).resolve()
        if not source.is_relative_to(root) or not source.is_file():
            raise FileNotFoundError(f"test file {rel!r} not found in {root}")
        target = work / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        if spec in tests:
            args.append(rel + node)
        folder = source.parent
        while folder != root and folder.is_relative_to(root):
            folders.add(folder)
            folder = folder.parent
    # conftest.py and non-test modules (helpers.py) of every folder on the way to a test
    # file, and its recorded reference calls (fixtures/, see .fixtures) if it has some
    for folder in folders:
        recorded = folder / "fixtures"
        if recorded.is_dir() and not recorded.is_symlink():
            target = work / recorded.relative_to(root)
            if not target.exists():
                shutil.copytree(recorded, target, ignore=_CACHES)
        for source in folder.glob("*.py"):
            if source.name.startswith("test_"):
                continue
            target = work / source.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                shutil.copy2(source, target)
    return args


_PYTEST_INI = """\
[pytest]
addopts =
junit_family = xunit1
markers =
    gpu: needs CuPy and a CUDA GPU
    slow: takes more than a few seconds
"""


# ---------------------------------------------------------------- running


class _Drain(threading.Thread):
    """Read a pipe to its end, keeping only the first ``limit`` bytes."""

    def __init__(self, pipe, limit: int) -> None:
        super().__init__(daemon=True)
        self.pipe, self.limit = pipe, limit
        self.head = bytearray()
        self.total = 0

    def run(self) -> None:
        while True:
            chunk = self.pipe.read1(1 << 16)
            if not chunk:
                break
            self.total += len(chunk)
            room = self.limit - len(self.head)
            if room > 0:
                self.head += chunk[:room]


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group of ``proc`` (the process itself where there are no groups)."""
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:  # pragma: no cover - no process groups
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass


def _status(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


def _judge_command(work: Path, junit: Path, args: list[str], judge: bool) -> list[str]:
    command = [sys.executable, "-m", "pytest", "-c", str(work / "pytest.ini")]
    command += ["--rootdir", str(work), "-p", "no:cacheprovider", "-p", _PLUGIN]
    command += ["--junitxml", str(junit), "--tb=short", "-q", "-s", "--color=no"]
    if judge:  # failures (hidden tests' source lines among them) go to the JUnit file only
        command.append("--no-summary")
    return command + args


_USERS: dict[str, tuple[int, int] | None] = {}


def _worker_user(name: str | None) -> tuple[int, int] | None:
    """(uid, gid) of the user the worker runs as: ``name`` when this process is root.

    None (the worker keeps this process's user) when not root, when there is no such
    user, or when that user cannot run this Python with NumPy (an interpreter under
    ``/root``, say): probed once per user and process.
    """
    if name is None or os.name != "posix" or os.geteuid() != 0:
        return None
    if name not in _USERS:
        _USERS[name] = None
        try:
            import pwd

            import numpy

            entry = pwd.getpwnam(name)
            site = str(Path(numpy.__file__).resolve().parent.parent)
            probe = f"import sys; sys.path[:] = [{site!r}]; import numpy"
            done = subprocess.run(
                [sys.executable, "-I", "-S", "-c", probe],
                user=entry.pw_uid,
                group=entry.pw_gid,
                extra_groups=[],
                cwd="/",
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=60,
            )
            if done.returncode == 0:
                _USERS[name] = (entry.pw_uid, entry.pw_gid)
        except (ImportError, KeyError, OSError, subprocess.SubprocessError):
            pass
    return _USERS[name]


def confinement(worker_user: str | None = DEFAULT_WORKER_USER) -> str:
    """How the worker's file access is confined here: ``"landlock"``, ``"user"``, or ``""``.

    ``landlock``: the kernel has Landlock (the worker reads only Python, NumPy and the
    student's copy; see :mod:`._landlock`); ``user``: no Landlock, but the grader runs
    as root and the worker as ``worker_user`` (it cannot read the judge's 0700 folders);
    ``""``: neither, so the worker can read whatever this user can (the instructor's
    checkout included): grade as root, or on a kernel with Landlock.
    """
    if _landlock.abi() > 0:
        return "landlock"
    return "user" if _worker_user(worker_user) is not None else ""


def _readable_tree(top: Path) -> None:
    """Folders 0755 and files 0644 below ``top`` (readable, not writable, by the worker)."""
    for folder, _dirs, files in os.walk(top):  # links are not followed, nor changed
        os.chmod(folder, 0o755)
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                os.chmod(path, 0o644)


def _prepare_worker(
    student: Path, package: str, place: Path, user: tuple[int, int] | None
) -> dict[str, Any]:
    """Lay out the worker's folder; return the keeper's configuration (without the fds)."""
    runtime, copy, scratch = place / "runtime", place / "student", place / "scratch"
    for folder in (runtime, copy, scratch):
        folder.mkdir()
    here = Path(__file__).parent
    shutil.copy2(here / "wire.py", runtime / "_minialexnet_wire.py")
    shutil.copy2(here / "_worker.py", runtime / "_worker.py")
    _copy_package(student, copy, package)
    import numpy

    # NumPy and nothing else of site-packages (no .pth files, no editable finder of the
    # instructor's package, no pytest): a folder of links
    lib = runtime / "lib"
    lib.mkdir()
    site = Path(numpy.__file__).resolve().parent.parent
    read = []
    for name in ("numpy", "numpy.libs"):
        if (site / name).is_dir():
            (lib / name).symlink_to(site / name, target_is_directory=True)
            read.append(str((site / name).resolve()))
    _readable_tree(place)
    if user is not None:
        os.chown(scratch, *user)
        os.chmod(scratch, 0o700)
    python = os.path.realpath(sys.executable)
    read += [os.path.realpath(sys.base_prefix), os.path.dirname(python), str(runtime), str(copy)]
    read += [p for p in _SYSTEM_READ if os.path.exists(p)]
    command = [python, "-I", "-S", str(runtime / "_worker.py")]
    command += [str(runtime / "_minialexnet_wire.py"), str(copy), str(lib), package]
    return {
        "command": command,
        "cwd": str(scratch),
        "user": user[0] if user else None,
        "group": user[1] if user else None,
        "landlock": str(here / "_landlock.py"),
        "read": read,
        "write": [str(scratch), *(p for p in _DEVICES if os.path.exists(p))],
    }


def run_tests(
    student: Path,
    tests: Sequence[str],
    root: Path,
    *,
    timeout: float = 60.0,
    support: Sequence[str] = (),
    reference: Path | None = None,
    output_limit: int = DEFAULT_OUTPUT_LIMIT,
    extra_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    package: str = PACKAGE,
    isolate: bool | None = None,
    worker_user: str | None = DEFAULT_WORKER_USER,
    memory_limit: int = DEFAULT_MEMORY_LIMIT,
    shown: Path | None = None,
    salt: int | None = None,
) -> SandboxResult:
    """Run ``tests`` (paths relative to ``root``, optionally ``::node`` ids) on ``student``'s code.

    Args:
        student: folder holding the student's ``package`` (``STUDENT/minialexnet``).
        tests: test files in the instructor's checkout ``root``, copied fresh for this run.
        root: the instructor's checkout the tests (and their conftests) are copied from; in
            grading, the judge imports ``root``'s package as ``package``.
        timeout: seconds before the judge and everything of the worker are killed.
        support: more files of ``root`` the tests need (copied, not collected), such as
            ``tests/exercises/conftest.py``; the ``conftest.py`` and helper modules of the
            test files' folders are copied anyway.
        reference: unused (the judge has the instructor's package itself); accepted so
            that older callers keep working. With ``isolate=None`` a call without it on a
            copy that is its own ``root`` is a self-check.
        output_limit: bytes of output kept (the judge's, and separately the worker's).
        extra_args: more pytest arguments.
        env: environment variables to set for the judge (never for the worker).
        package: the package under test.
        isolate: True: grade (the judge runs the tests, the student's code runs in the
            worker); False: a self-check (one process, the package imported from
            ``student``); None: False when ``reference`` is None and ``student`` is
            ``root``, else True.
        worker_user: the user the worker runs as when this process is root (None: keep).
        memory_limit: the worker's address-space limit in bytes.
        shown: the folder that messages name as the student's (default ``student``):
            the paths of the copies the run made of ``student``'s package (the worker's,
            a self-check's) are written as this folder's in every message, traceback and
            output of the result, so a student reads their own folder's paths.
        salt: the grading salt (a non-negative integer): set as ``MINIALEXNET_GRADE_SALT``
            for the judge (never the worker, whose environment is its own), so the tests'
            random inputs (``exercise_support.generator``) differ from the ones recorded
            for the student's self-check. None: unset, whatever the grader's environment
            holds.

    Returns:
        The run's :class:`SandboxResult`.
    """
    student = Path(student).resolve()
    if not student.is_dir():
        raise FileNotFoundError(f"student folder {student} does not exist")
    if not tests:
        raise ValueError("run_tests: no test files given")
    root = Path(root).resolve()
    shown = student if shown is None else Path(shown)
    if isolate is None:
        isolate = not (reference is None and student == root)
    copies: list[str] = []  # folders holding a copy of the student's package in this run
    if shown != student:  # ``student`` is itself a copy (the grader's, loop versions stubbed)
        copies.append(str(student))
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="minialexnet-judge-")))
        os.chmod(work, 0o700)  # the worker cannot read the tests, hidden ones included
        args = _copy_tests(root, tests, support, work)
        (work / "pytest.ini").write_text(_PYTEST_INI, encoding="utf-8")
        plugin_dir = work / "plugin"
        plugin_dir.mkdir()
        shutil.copy2(Path(__file__).with_name("_sandbox_plugin.py"), plugin_dir / f"{_PLUGIN}.py")
        junit, status = work / "results.xml", work / "status.txt"
        child_env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
        child_env.update(env or {})
        child_env.pop(GRADE_SALT_ENV, None)
        if salt is not None:
            child_env[GRADE_SALT_ENV] = str(int(salt))
        child_env.update(
            PYTHONDONTWRITEBYTECODE="1",
            MINIALEXNET_SANDBOX_PACKAGE=package,
            MINIALEXNET_SANDBOX_STATUS=str(status),
        )
        command = _judge_command(work, junit, [*extra_args, *args], isolate)
        keeper = None
        if isolate:
            place = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="minialexnet-worker-"))
            )
            config = _prepare_worker(student, package, place, _worker_user(worker_user))
            copies += [str(place / "student"), os.path.realpath(place / "student")]
            keeper, channel = _start_keeper(config, timeout, output_limit, memory_limit)
            child_env.update(
                PYTHONPATH=os.pathsep.join([str(plugin_dir), str(root)]),
                MINIALEXNET_SANDBOX_MODE="judge",
                MINIALEXNET_SANDBOX_CHANNEL=f"{channel[0]},{channel[1]}",
            )
            pass_fds = channel
        else:
            student_dir = work / "student"
            student_dir.mkdir()
            _copy_package(student, student_dir, package)
            child_env.update(
                PYTHONPATH=os.pathsep.join([str(plugin_dir), str(student_dir)]),
                MINIALEXNET_SANDBOX_MODE="local",
                MINIALEXNET_SANDBOX_STUDENT=str(student_dir),
                MINIALEXNET_SANDBOX_SHOWN=str(shown),
            )
            pass_fds = ()
            # pytest names the tests' process's files relative to its root folder (work)
            copies += [str(student_dir), os.path.realpath(student_dir), "student"]

        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                command,
                cwd=work,
                env=child_env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=os.name == "posix",
                pass_fds=pass_fds,
            )
        except BaseException:
            if keeper is not None:
                _stop_keeper(keeper)
            raise
        finally:
            for fd in pass_fds:
                os.close(fd)
        drain = _Drain(proc.stdout, output_limit)
        drain.start()
        timed_out = False
        try:
            returncode: int | None = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out, returncode = True, None
            _kill_group(proc)
            proc.wait()
        _kill_group(proc)  # anything the judge left running in the background
        worker = _stop_keeper(keeper) if keeper is not None else {}
        seconds = time.monotonic() - start
        drain.join(timeout=5)
        proc.stdout.close()
        output = bytes(drain.head).decode("utf-8", errors="replace")
        if drain.total > output_limit:
            output += f"\n[... output cut: {drain.total} bytes in all, first {output_limit} kept]"
        # every process of the worker is gone now: the results cannot change any more
        results = _parse_junit(junit) if junit.is_file() and not timed_out else []
        problem = _problem(_status(status), timed_out, timeout, returncode, results, output)
        if problem is None and worker.get("error"):
            problem = str(worker["error"])
        if problem is None and worker.get("left"):
            problem = f"{worker['left']} processes of the student's code could not be stopped"
    clean = _Cleaner(copies, shown, package)
    return SandboxResult(
        tests=tuple(clean.outcome(t) for t in results),
        returncode=returncode,
        timed_out=timed_out,
        seconds=seconds,
        output=clean(output),
        output_bytes=drain.total,
        problem=None if problem is None else clean(problem),
        worker_output=clean(str(worker.get("output", ""))),
        worker_output_bytes=int(worker.get("output_bytes", 0) or 0),
    )


_INTERNAL_ERROR = re.compile(r"\b(?:[\w.]+\.)?remote\.Student(?:Attribute)?Error: ")
"""How pytest names the judge's wrapper of the student's exception (``StudentError``)."""


class _Cleaner:
    """Messages as a student should read them.

    * without the judge's wrapper of the student's exception: ``NotImplementedError:
      lrn_forward: ...``, not ``minialexnet.exercises.remote.StudentError:
      NotImplementedError: ...``;
    * the run's copies of the student's package named as the student's folder (``shown``).
    """

    def __init__(self, copies: Sequence[str], shown: Path, package: str) -> None:
        absolute = sorted({c for c in copies if os.path.isabs(c)}, key=len, reverse=True)
        self.shown = str(shown)
        self.absolute = [re.compile(re.escape(c) + r"(?=/)") for c in absolute]
        # a path relative to the judge's folder, at the start of a traceback's line
        self.relative = [
            re.compile(rf"(?m)^(E?\s*){re.escape(c)}/(?={re.escape(package)}/)")
            for c in copies
            if not os.path.isabs(c)
        ]

    def __call__(self, text: str) -> str:
        if not text:
            return text
        text = _INTERNAL_ERROR.sub("", text)
        for pattern in self.absolute:
            text = pattern.sub(lambda _m: self.shown, text)
        for pattern in self.relative:
            text = pattern.sub(lambda m: m.group(1) + self.shown + "/", text)
        return text

    def outcome(self, test: TestOutcome) -> TestOutcome:
        return replace(test, message=self(test.message), details=self(test.details))


def _start_keeper(
    config: dict, timeout: float, output_limit: int, memory_limit: int
) -> tuple[subprocess.Popen, tuple[int, int]]:
    """Start the keeper (and so the worker); return it and the judge's ends of the channel."""
    to_worker_r, to_worker_w = os.pipe()
    to_judge_r, to_judge_w = os.pipe()
    rlimits = {"RLIMIT_AS": memory_limit, "RLIMIT_FSIZE": 16 << 20, "RLIMIT_CORE": 0}
    if config["user"] is not None:
        rlimits["RLIMIT_NPROC"] = 256
    config = dict(
        config,
        fd_in=to_worker_r,
        fd_out=to_judge_w,
        env={
            "PATH": os.defpath,
            "LANG": "C.UTF-8",
            "HOME": config["cwd"],
            "TMPDIR": config["cwd"],
            **_THREADS,
        },
        rlimits=rlimits,
        output_limit=output_limit,
        max_seconds=timeout + 30,
    )
    try:
        keeper = subprocess.Popen(
            [
                sys.executable,
                "-I",
                "-S",
                str(Path(__file__).with_name("_keeper.py")),
                json.dumps(config),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            pass_fds=(to_worker_r, to_judge_w),
            start_new_session=True,
        )
    finally:
        os.close(to_worker_r)
        os.close(to_judge_w)
    return keeper, (to_judge_r, to_worker_w)


def _stop_keeper(keeper: subprocess.Popen) -> dict:
    """Tell the keeper to end the worker and all it started; its report (see _keeper)."""
    try:
        out, _ = keeper.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        keeper.kill()
        out, _ = keeper.communicate()
    try:
        report = json.loads(out.decode("utf-8", "replace").strip().splitlines()[-1])
    except (ValueError, IndexError):
        report = {"error": "the keeper of the student's process failed"}
    return report if isinstance(report, dict) else {}


def _last_line(text: str, limit: int = 300) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    line = lines[-1] if lines else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _problem(
    status: str,
    timed_out: bool,
    timeout: float,
    returncode: int | None,
    results: list[TestOutcome],
    output: str,
) -> str | None:
    """Why the run as a whole failed, from the plugin's status line and the exit, or None."""
    if status.startswith("problem "):
        return status[len("problem ") :]
    if timed_out:
        where = ""
        if status.startswith("running "):
            where = f" in {status[len('running ') :]}"
        elif status.startswith("importing "):
            where = f" while {status}"
        return f"time limit of {timeout:g} s reached{where} (an endless loop?); the run was killed"
    if returncode is not None and returncode < 0:
        name = signal.Signals(-returncode).name if -returncode in signal.valid_signals() else ""
        return f"the test process was killed by signal {-returncode} {name}".rstrip()
    if not results:
        if returncode == 5:
            return "no tests were collected"
        return (
            f"pytest exited with status {returncode} without reporting any test: "
            f"{_last_line(output) or 'no output'}"
        )
    return None


# ---------------------------------------------------------------- JUnit XML


def _parse_junit(path: Path) -> list[TestOutcome]:
    """The per-test outcomes in pytest's JUnit XML (xunit1 family, with ``file``)."""
    try:
        tree = ET.parse(path)
    except ET.ParseError:
        return []
    outcomes = []
    for case in tree.iter("testcase"):
        outcome, message, details = "passed", "", ""
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = "failed" if tag == "failure" else tag
                message = (node.get("message") or "").strip()
                details = (node.text or "").strip()
                break
        if outcome == "error" or (outcome == "failed" and not message):
            message = _last_line(details).removeprefix("E").strip() or message
        message = message.splitlines()[0] if message else ""
        if len(details) > _DETAILS_LIMIT:
            details = details[:_DETAILS_LIMIT] + "\n[... cut]"
        outcomes.append(
            TestOutcome(
                nodeid=_nodeid(case),
                outcome=outcome,
                message=message,
                details=details,
                seconds=float(case.get("time") or 0.0),
            )
        )
    return outcomes


def _nodeid(case: ET.Element) -> str:
    """pytest's node id from a testcase's ``file``, ``classname`` and ``name``."""
    name, classname, file = case.get("name", ""), case.get("classname", ""), case.get("file")
    if not file:  # a file that failed to import: name is its dotted path
        return name if not classname else f"{classname}.{name}"
    module = file[: -len(".py")].replace("/", ".") if file.endswith(".py") else file
    classes = classname[len(module) + 1 :] if classname.startswith(module + ".") else ""
    return "::".join([file, *filter(None, classes.split(".")), name])
