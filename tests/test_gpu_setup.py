"""Set-up on a GPU machine: the driver's CUDA version picks the CuPy that make installs.

A fake ``nvidia-smi`` on PATH stands in for the driver (CUDA 12.4, 13.0, 11.8, one that
fails like a machine whose driver does not answer, and none at all): what
``minialexnet._gpu_setup`` prints, what ``make -n train`` plans to install, what the
gpu-setup recipe does with a pip that succeeds or fails (offline), and what
``python -m minialexnet.train`` says where there is no GPU.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from minialexnet import _gpu_setup, train

ROOT = Path(__file__).resolve().parents[1]
MAKE = shutil.which("make")
HAS_CUPY = importlib.util.find_spec("cupy") is not None
needs_make = pytest.mark.skipif(MAKE is None, reason="make is not installed")
no_cupy = pytest.mark.skipif(HAS_CUPY, reason="CuPy is installed: the run would find a GPU")

HEADER = """\
Thu Dec  4 18:07:38 2025
+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI {driver}              Driver Version: {driver}      CUDA Version: {cuda}     |
|-----------------------------------------+------------------------+----------------------+
| GPU  Name                 Persistence-M | Bus-Id          Disp.A | Volatile Uncorr. ECC |
| Fan  Temp   Perf          Pwr:Usage/Cap |           Memory-Usage | GPU-Util  Compute M. |
|=========================================+========================+======================|
|   0  NVIDIA H200                    On  |   00000000:19:00.0 Off |                    0 |
| N/A   31C    P0             76W /  700W |       1MiB / 143771MiB |      0%      Default |
+-----------------------------------------+------------------------+----------------------+
"""
NO_DRIVER = (
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
    "Make sure that the latest NVIDIA driver is installed and running.\n"
)
DRIVERS = {
    "cuda12": (HEADER.format(driver="550.54.15", cuda="12.4"), 0),
    "cuda13": (HEADER.format(driver="580.65.06", cuda="13.0"), 0),
    "cuda11": (HEADER.format(driver="470.256.02", cuda="11.4"), 0),
    "cuda14": (HEADER.format(driver="600.10", cuda="14.1"), 0),
    "broken": (NO_DRIVER, 9),
}


def fake_bin(tmp_path: Path, driver: str | None) -> Path:
    """A folder for PATH: an ``nvidia-smi`` that prints DRIVERS[driver] (none for None).

    With links to the two commands the Makefile's recipe runs (``cat``, ``rm``), this
    folder is the whole PATH: a real ``nvidia-smi`` elsewhere stays out of sight.
    """
    folder = tmp_path / f"bin-{driver}"
    folder.mkdir(exist_ok=True)
    for tool in ("cat", "rm"):
        if not (folder / tool).exists():
            (folder / tool).symlink_to(shutil.which(tool) or f"/bin/{tool}")
    if driver is not None:
        text, status = DRIVERS[driver]
        script = folder / "nvidia-smi"
        quoted = "'" + text.replace("'", "'\\''") + "'"  # one shell word, as it is
        script.write_text(f"#!/bin/sh\nprintf '%s' {quoted}\nexit {status}\n")
        script.chmod(0o755)
    return folder


def clean_env(path: Path, **extra: str) -> dict[str, str]:
    """This process's environment with PATH=path and no make or GPU settings inherited."""
    drop = {"PATH", "GPU", "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return {**env, "PATH": str(path), **extra}


# -- detection --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("driver", "printed", "note"),
    [
        ("cuda12", "cupy-cuda12x>=13", ""),
        ("cuda13", "cupy-cuda13x>=13.6", ""),
        ("cuda14", "cupy-cuda13x>=13.6", ""),  # a newer driver runs CUDA 13 code
        ("cuda11", "", "supports CUDA 11.4, but minialexnet's CuPy packages need CUDA 12"),
        ("broken", "", "nvidia-smi exited with status 9: no working NVIDIA driver"),
        (None, "", ""),  # no driver: nothing printed, nothing said (CI)
    ],
)
def test_the_script_prints_the_cupy_for_the_driver(tmp_path, driver, printed, note):
    # -S: no site-packages, as the system python3 that runs it before .venv exists
    done = subprocess.run(
        [sys.executable, "-S", "-m", "minialexnet._gpu_setup"],
        cwd=ROOT,
        env=clean_env(fake_bin(tmp_path, driver)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == printed
    assert (note in done.stderr) if note else done.stderr == ""
    if note:
        assert "staying on the CPU" in done.stderr


def test_parse_cuda_version():
    assert _gpu_setup.parse_cuda_version(DRIVERS["cuda12"][0]) == (12, 4)
    assert _gpu_setup.parse_cuda_version("CUDA Version: 13.0") == (13, 0)
    assert _gpu_setup.parse_cuda_version(NO_DRIVER) is None


def test_the_requirements_are_the_extras_of_pyproject():
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for major, requirement in _gpu_setup.CUPY_FOR_CUDA.items():
        assert extras[_gpu_setup.EXTRA_FOR_CUDA[major]] == [requirement]


# -- the Makefile -----------------------------------------------------------------------


def make(tmp_path: Path, driver: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MAKE, "--no-print-directory", "-C", str(ROOT), *args, f"PYTHON={sys.executable}"],
        env=clean_env(fake_bin(tmp_path, driver)),
        capture_output=True,
        text=True,
        timeout=60,
    )


@needs_make
@pytest.mark.parametrize(
    ("driver", "package"),
    [
        ("cuda12", "cupy-cuda12x>=13"),
        ("cuda13", "cupy-cuda13x>=13.6"),
        ("broken", None),
        (None, None),
    ],
)
@pytest.mark.parametrize("target", ["train", "test"])
def test_make_plans_to_install_the_matching_cupy(tmp_path, driver, package, target):
    done = make(tmp_path, driver, "-n", target)  # -n: prints the recipes, runs none
    assert done.returncode == 0, done.stderr
    if package is None:
        assert "cupy" not in done.stdout
    else:
        assert f"-m pip --disable-pip-version-check -q install '{package}'" in done.stdout
        name = package.split(">=")[0]
        assert done.stdout.count("cupy-cuda") == done.stdout.count(name), "only that CuPy"


@needs_make
def test_make_train_gpu_0_installs_nothing_and_trains_on_the_cpu(tmp_path):
    done = make(tmp_path, "cuda12", "-n", "train", "GPU=0")
    assert done.returncode == 0, done.stderr
    assert "cupy" not in done.stdout
    assert "-m minialexnet.train --device cpu" in done.stdout
    assert "--device cpu" not in make(tmp_path, "cuda12", "-n", "train").stdout


@needs_make
def test_gpu_setup_installs_once_replaces_on_a_new_driver_and_survives_offline(tmp_path):
    """The recipe run for real, with a fake pip that logs its arguments."""
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / ".base").touch()  # newer than pyproject.toml: make sees the venv as built
    calls, status = tmp_path / "pip-calls", tmp_path / "pip-status"
    pip = tmp_path / "pip"
    pip.write_text(f'#!/bin/sh\necho "$*" >> {calls}\nread code < {status}\nexit $code\n')
    pip.chmod(0o755)
    stamp = venv / ".gpu"

    def setup(driver: str | None, pip_exit: int) -> str:
        status.write_text(f"{pip_exit}\n")
        done = make(tmp_path, driver, "gpu-setup", f"VENV={venv}", f"PIP={pip}")
        assert done.returncode == 0, done.stdout + done.stderr  # never fails make train
        return done.stdout

    def pip_calls() -> list[str]:
        return calls.read_text().splitlines() if calls.exists() else []

    assert setup(None, 0) == "" and pip_calls() == []  # no driver: no pip at all

    out = setup("cuda12", 1)  # offline: pip fails
    assert "could not install cupy-cuda12x>=13" in out and "staying" not in out
    assert "training stays on the CPU" in out
    assert not stamp.exists() and pip_calls() == ["install cupy-cuda12x>=13"]

    out = setup("cuda12", 0)  # online again: tried again, and recorded
    assert "installing cupy-cuda12x>=13" in out
    assert stamp.read_text().strip() == "cupy-cuda12x>=13"
    assert pip_calls()[1:] == ["install cupy-cuda12x>=13"]

    assert setup("cuda12", 0) == "" and len(pip_calls()) == 2  # installed: nothing to do

    setup("cuda13", 0)  # a new driver: the old CuPy out, the matching one in
    assert pip_calls()[2:] == ["uninstall -y cupy-cuda12x>=13", "install cupy-cuda13x>=13.6"]
    assert stamp.read_text().strip() == "cupy-cuda13x>=13.6"


# -- python -m minialexnet.train without a GPU ------------------------------------------


@no_cupy
def test_train_on_gpu_without_cupy_says_which_pip_command_and_exits_2(tmp_path):
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "minialexnet.train", "--device", "gpu", "--out", str(out)],
        cwd=tmp_path,
        env=clean_env(fake_bin(tmp_path, "cuda13"), PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "driver supports CUDA 13.0" in done.stderr
    assert "pip install 'cupy-cuda13x>=13.6'" in done.stderr
    assert not out.exists(), "a run that cannot start leaves no output folder"


@no_cupy
def test_train_without_a_driver_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(fake_bin(tmp_path, None)))
    assert train.main(["--gpus", "0,1", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "no NVIDIA driver found" in err
    assert "pip install 'cupy-cuda12x>=13'" in err and "pip install 'cupy-cuda13x>=13.6'" in err


@no_cupy
@pytest.mark.parametrize(
    ("device", "line"),
    [
        ("auto", "training on the CPU (no NVIDIA driver found: no nvidia-smi on PATH)"),
        ("cpu", "training on the CPU (as asked: --device cpu)"),
    ],
)
def test_the_device_line_says_why_the_cpu(tmp_path, monkeypatch, device, line):
    monkeypatch.setenv("PATH", str(fake_bin(tmp_path, None)))
    devices, where = train.choose_devices(None, device)
    assert [d.name for d in devices] == ["cpu"]
    assert where == line


@no_cupy
def test_the_device_line_of_an_auto_run_with_a_driver_but_no_cupy(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(fake_bin(tmp_path, "cuda12")))
    assert train.choose_devices(None, "auto")[1] == (
        "training on the CPU (CuPy is not installed; for this driver's CUDA 12.4: "
        "pip install 'cupy-cuda12x>=13')"
    )


class FakeGpu:
    """What choose_devices reads of a GPU Device: its name, and CuPy's device properties."""

    is_gpu = True

    def __init__(self, index: int) -> None:
        self.index, self.name = index, f"gpu:{index}"
        runtime = SimpleNamespace(getDeviceProperties=lambda i: {"name": b"NVIDIA H200"})
        self.xp = SimpleNamespace(cuda=SimpleNamespace(runtime=runtime))


def test_the_device_line_names_the_gpus(monkeypatch):
    gpus = [FakeGpu(0), FakeGpu(1)]
    monkeypatch.setattr(train, "tower_devices", lambda g, d: gpus if g else gpus[:1])
    assert train.choose_devices(None, "gpu")[1] == "training on gpu:0 (NVIDIA H200)"
    assert train.choose_devices("0,1", "auto")[1] == (
        "training on gpu:0 (NVIDIA H200) and gpu:1 (NVIDIA H200)"
    )


def test_train_prints_the_device_line(tmp_path, capsys):
    tiny = ["--train-size", "64", "--val-size", "32", "--batch-size", "32", "--epochs", "1"]
    args = [*tiny, "--device", "cpu", "--quiet", "--no-ten-crop", "--out", str(tmp_path / "r")]
    assert train.main(args) == 0
    assert "training on the CPU (as asked: --device cpu)\n" in capsys.readouterr().out
