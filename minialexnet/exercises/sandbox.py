"""Run pytest on a student's code in a separate process, safely: the grader's one engine.

``run_tests(student, tests, root=...)`` makes a fresh temporary folder holding

* ``student/minialexnet``: a copy of the student's package, and nothing else of the
  student's folder (a stray ``random.py`` or ``numpy/`` beside it cannot shadow anything,
  and the run cannot change the student's files);
* copies of the named test files from the instructor's checkout ``root`` (never the
  student's), at the same relative paths, with the ``conftest.py`` and helper modules
  (``tests/helpers.py``) of the folders they sit in;
* ``reference/minialexnet_reference``: a pristine copy of the instructor's package under
  another name (it uses relative imports, so the copy imports as it is), from which tests
  take a forward pass's cache or reference values that the student's code cannot change;
* ``plugin/``: the checking plugin (:mod:`minialexnet.exercises._sandbox_plugin`);

and runs ``python -m pytest`` there with ``PYTHONPATH=plugin:reference:student`` in a new
process group, with ``-p no:cacheprovider`` and ``--junitxml``. The plugin fails every
test with a clear reason unless ``minialexnet`` is imported from the student's copy.
At the time limit the whole process group is killed (whatever the student's code
started goes too). Output is read as it comes and only its first ``output_limit`` bytes
are kept, so code that prints in a loop costs neither memory nor disk. Per-test results
come from the JUnit XML file; a run that produced none (timeout, crash, an exception at
import) gets a ``problem`` saying why, naming the test that was running.

This guards against mistakes (loops, crashes, floods of output, a broken package), not
against a student who sets out to attack the grader: the code runs with the grader's
rights.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_OUTPUT_LIMIT",
    "TestOutcome",
    "SandboxResult",
    "copy_reference_package",
    "run_tests",
]

DEFAULT_OUTPUT_LIMIT = 64 * 1024
"""Bytes of a run's output (stdout and stderr together) kept; the rest is counted, not kept."""

PACKAGE = "minialexnet"
_PLUGIN = "_minialexnet_sandbox_plugin"
_DETAILS_LIMIT = 4000  # characters of one failure's traceback kept
_CACHES = shutil.ignore_patterns("__pycache__", "*.pyc")
# the grader's own pytest settings and paths must not reach the graded run
_DROPPED_ENV = {"PYTHONPATH", "PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTHONSTARTUP"}


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
    """

    tests: tuple[TestOutcome, ...]
    returncode: int | None
    timed_out: bool
    seconds: float
    output: str
    output_bytes: int
    problem: str | None = None

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
    # conftest.py and non-test modules (helpers.py) of every folder on the way to a test file
    for folder in folders:
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
) -> SandboxResult:
    """Run ``tests`` (paths relative to ``root``, optionally ``::node`` ids) on ``student``'s code.

    Args:
        student: folder holding the student's ``package`` (``STUDENT/minialexnet``).
        tests: test files in the instructor's checkout ``root``, copied fresh for this run.
        root: the instructor's checkout the tests (and their conftests) are copied from.
        timeout: seconds before the whole process group is killed.
        support: more files of ``root`` the tests need (copied, not collected), such as
            ``tests/exercises/conftest.py``; the ``conftest.py`` and helper modules of the
            test files' folders are copied anyway.
        reference: a folder holding ``minialexnet_reference`` (see
            :func:`copy_reference_package`), put on the path ahead of the student's
            folder; None to run without it (a student's self-check).
        output_limit: bytes of output kept.
        extra_args: more pytest arguments.
        env: environment variables to set for the run (on top of this process's).
        package: the package that must come from ``student``.

    Returns:
        The run's :class:`SandboxResult`.
    """
    student = Path(student).resolve()
    if not student.is_dir():
        raise FileNotFoundError(f"student folder {student} does not exist")
    if not tests:
        raise ValueError("run_tests: no test files given")
    with tempfile.TemporaryDirectory(prefix="minialexnet-grade-") as tmp:
        work = Path(tmp)
        args = _copy_tests(Path(root), tests, support, work)
        (work / "pytest.ini").write_text(_PYTEST_INI, encoding="utf-8")
        plugin_dir = work / "plugin"
        plugin_dir.mkdir()
        shutil.copy2(Path(__file__).with_name("_sandbox_plugin.py"), plugin_dir / f"{_PLUGIN}.py")
        junit, status = work / "results.xml", work / "status.txt"
        student_dir = work / "student"
        student_dir.mkdir()
        if (student / package).is_dir():
            shutil.copytree(student / package, student_dir / package, ignore=_CACHES, symlinks=True)

        path = [str(plugin_dir)] + ([str(Path(reference).resolve())] if reference else [])
        child_env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
        child_env.update(env or {})
        child_env.update(
            PYTHONPATH=os.pathsep.join([*path, str(student_dir)]),
            PYTHONDONTWRITEBYTECODE="1",
            MINIALEXNET_SANDBOX_PACKAGE=package,
            MINIALEXNET_SANDBOX_STUDENT=str(student_dir),
            MINIALEXNET_SANDBOX_SHOWN=str(student),
            MINIALEXNET_SANDBOX_STATUS=str(status),
        )
        command = [sys.executable, "-m", "pytest", "-c", str(work / "pytest.ini")]
        command += ["--rootdir", str(work), "-p", "no:cacheprovider", "-p", _PLUGIN]
        command += ["--junitxml", str(junit), "--tb=short", "-q", "-s", "--color=no"]
        command += [*extra_args, *args]

        start = time.monotonic()
        proc = subprocess.Popen(
            command,
            cwd=work,
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=os.name == "posix",
        )
        drain = _Drain(proc.stdout, output_limit)
        drain.start()
        timed_out = False
        try:
            returncode: int | None = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out, returncode = True, None
            _kill_group(proc)
            proc.wait()
        seconds = time.monotonic() - start
        _kill_group(proc)  # anything the tests left running in the background
        drain.join(timeout=5)
        proc.stdout.close()
        output = bytes(drain.head).decode("utf-8", errors="replace")
        if drain.total > output_limit:
            output += f"\n[... output cut: {drain.total} bytes in all, first {output_limit} kept]"

        results = _parse_junit(junit) if junit.is_file() and not timed_out else []
        problem = _problem(_status(status), timed_out, timeout, returncode, results, output)
    return SandboxResult(
        tests=tuple(results),
        returncode=returncode,
        timed_out=timed_out,
        seconds=seconds,
        output=output,
        output_bytes=drain.total,
        problem=problem,
    )


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
