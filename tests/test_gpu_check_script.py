"""The GPU check script (.ci/gpu-check) runs only on a lent GPU machine, with a fixed
budget: a typo in one of its commands would waste that run. Every minialexnet command
in it must parse with the current command lines (nothing is run here)."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from minialexnet import train
from minialexnet.bench.__main__ import build_parser

SCRIPT = Path(__file__).resolve().parent.parent / ".ci" / "gpu-check"


def _commands() -> list[list[str]]:
    text = SCRIPT.read_text().replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        m = re.search(r"\$PY -m (minialexnet\.\S+)(.*)", line)
        if m and not line.lstrip().startswith("#"):
            args = shlex.split(m.group(2).replace('"$OUT', '"/tmp/out'))
            found.append([m.group(1), *args])
    return found


def test_the_script_is_valid_bash():
    done = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_script_runs_the_gpu_tests_benchmarks_and_training():
    modules = [c[0] for c in _commands()]
    assert modules.count("minialexnet.bench") >= 4 and "minialexnet.train" in modules
    assert "-m gpu" in SCRIPT.read_text()


@pytest.mark.parametrize("command", _commands(), ids=lambda c: " ".join(c[:3]))
def test_every_command_in_the_script_parses(command):
    module, *args = command
    if module == "minialexnet.bench":
        parsed = build_parser().parse_args(args)
        assert callable(parsed.run)
    elif module == "minialexnet.train":
        train.parse_args(args)
    else:
        pytest.fail(f"{module}: the test does not know this command; add it here")
