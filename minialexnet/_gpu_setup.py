"""Which CuPy this machine needs: the NVIDIA driver's CUDA version, read from ``nvidia-smi``.

``python3 -m minialexnet._gpu_setup`` prints the pip requirement of the CuPy package
that matches the installed driver (``cupy-cuda12x>=13`` for CUDA 12,
``cupy-cuda13x>=13.6`` for CUDA 13), or nothing where there is no usable driver
(no ``nvidia-smi`` on PATH, or one that fails) or its CUDA version has no CuPy
package here (then a one-line note on stderr says so). The Makefile runs it with
the system's python3 before ``.venv`` exists, so it uses the standard library
only (and imports nothing else of the package, whose ``__init__`` imports
nothing); ``minialexnet.train`` uses it to say why it trains on the CPU and what
to install.

A driver runs code built for its own CUDA version and every older one, so the
package is the one for the driver's major version, or the newest one here for a
driver newer than that (CUDA 14 and later get ``cupy-cuda13x``). Drivers older
than CUDA 12 get nothing (the extras are CuPy for CUDA 12 and 13): a note says so.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass

# keep in step with pyproject.toml's extras "gpu" and "gpu-cuda13" (a test checks)
CUPY_FOR_CUDA: dict[int, str] = {12: "cupy-cuda12x>=13", 13: "cupy-cuda13x>=13.6"}
EXTRA_FOR_CUDA: dict[int, str] = {12: "gpu", 13: "gpu-cuda13"}

_CUDA_VERSION = re.compile(r"CUDA Version\s*:\s*(\d+)\.(\d+)")


@dataclass(frozen=True)
class Driver:
    """What ``nvidia-smi`` said about this machine's NVIDIA driver.

    ``found``: ``nvidia-smi`` ran and succeeded; ``cuda``: the highest CUDA version the
    driver supports, as ``(major, minor)``, or ``None``; ``problem``: why there is no
    usable driver (empty when there is one); ``on_path``: an ``nvidia-smi`` is on PATH
    (a driver is installed, working or not).
    """

    found: bool
    cuda: tuple[int, int] | None = None
    problem: str = ""
    on_path: bool = True

    @property
    def cuda_text(self) -> str:
        """``"12.4"``, or ``"unknown"``."""
        return "unknown" if self.cuda is None else f"{self.cuda[0]}.{self.cuda[1]}"

    @property
    def requirement(self) -> str | None:
        """The CuPy pip requirement for this driver, or ``None`` (no driver, unknown CUDA)."""
        if not self.found or self.cuda is None or self.cuda[0] < min(CUPY_FOR_CUDA):
            return None
        return CUPY_FOR_CUDA[min(self.cuda[0], max(CUPY_FOR_CUDA))]


def parse_cuda_version(text: str) -> tuple[int, int] | None:
    """``(12, 4)`` from ``nvidia-smi``'s header line ``... CUDA Version: 12.4 |``; else None."""
    match = _CUDA_VERSION.search(text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def detect(nvidia_smi: str = "nvidia-smi", timeout: float = 20.0) -> Driver:
    """Run ``nvidia-smi`` (looked up on PATH) and read the CUDA version the driver supports."""
    path = shutil.which(nvidia_smi)
    if path is None:
        return Driver(False, problem="no NVIDIA driver found: no nvidia-smi on PATH", on_path=False)
    try:
        done = subprocess.run([path], capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return Driver(False, problem=f"nvidia-smi did not run: no working NVIDIA driver ({exc})")
    if done.returncode != 0:
        return Driver(
            False,
            problem=f"nvidia-smi exited with status {done.returncode}: no working NVIDIA driver",
        )
    cuda = parse_cuda_version(done.stdout)
    if cuda is None:
        return Driver(True, None, "nvidia-smi reports no CUDA version")
    if cuda[0] < min(CUPY_FOR_CUDA):
        return Driver(
            True,
            cuda,
            f"the NVIDIA driver supports CUDA {cuda[0]}.{cuda[1]}, but minialexnet's CuPy "
            f"packages need CUDA {min(CUPY_FOR_CUDA)} or newer: update the driver to use the GPU",
        )
    return Driver(True, cuda)


def cupy_installed() -> bool:
    """True when a ``cupy`` package is installed (found, not imported)."""
    return importlib.util.find_spec("cupy") is not None


def install_hint(driver: Driver) -> str:
    """What to install to train on this machine's GPU: a pip command for its CUDA version."""
    if driver.requirement is not None:
        if cupy_installed():
            return (
                f"the NVIDIA driver supports CUDA {driver.cuda_text} and CuPy is installed, but "
                "no CUDA device answers: check `nvidia-smi` and that the installed cupy-cuda*x "
                f"package matches (`pip install '{driver.requirement}'`), or use --device cpu"
            )
        return (
            f"this machine's NVIDIA driver supports CUDA {driver.cuda_text}: install CuPy with "
            f"`pip install '{driver.requirement}'` (`make train` does it), or use --device cpu"
        )
    packages = ", ".join(
        f"`pip install '{req}'` for CUDA {major}" for major, req in sorted(CUPY_FOR_CUDA.items())
    )
    return (
        f"{driver.problem}. A GPU needs NVIDIA's driver (`nvidia-smi` shows its CUDA "
        f"version), then CuPy: {packages}; or use --device cpu"
    )


def why_cpu(driver: Driver) -> str:
    """Why ``--device auto`` found no GPU on this machine, in a few words."""
    if driver.requirement is None:
        return driver.problem
    if not cupy_installed():
        return (
            f"CuPy is not installed; for this driver's CUDA {driver.cuda_text}: "
            f"pip install '{driver.requirement}'"
        )
    return "CuPy is installed but no CUDA device answers"


def main() -> int:
    """Print the CuPy requirement for this machine's driver, or nothing; always 0."""
    driver = detect()
    if driver.requirement is not None:
        print(driver.requirement)
    elif driver.on_path:  # a driver, but none CuPy can use: say so (no driver: say nothing)
        print(f"minialexnet: {driver.problem}; staying on the CPU", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
