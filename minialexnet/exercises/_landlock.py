"""Linux Landlock for the worker: it may read only what it needs, write only its scratch folder.

Landlock (Linux 5.13 and later) lets an unprivileged process restrict itself and every
process it starts afterwards. :func:`restrict` (called by the keeper in the worker's
child process, just before ``exec``) allows:

* reading and executing beneath the ``read`` paths (the Python installation, the system
  libraries, NumPy, the student's copy and the worker's own code);
* everything beneath the ``write`` paths (the worker's scratch folder, ``/dev/null``);

and nothing else on the file system: not the instructor's checkout, not the judge's
folder (its tests, hidden ones included, and its results), not ``/tmp``. Where the kernel
supports them (ABI 4 and 6) it also forbids TCP connections and binding, and signals and
abstract UNIX sockets to processes outside the sandbox (the keeper, the judge, the grader).
Landlock also stops ``ptrace`` of (and reading ``/proc/PID/fd`` of) processes outside.

Returns the ABI version applied, or 0 where Landlock is not available (another OS, an
old kernel, a kernel built without it): the caller falls back to the other limits.
Standard library only: the keeper loads this file by path.
"""

from __future__ import annotations

import ctypes
import os
import struct
import sys

_CREATE, _ADD_RULE, _RESTRICT = 444, 445, 446  # the same number on x86-64 and arm64
_PR_SET_NO_NEW_PRIVS = 38
_RULE_PATH_BENEATH = 1
_VERSION = 1  # landlock_create_ruleset flag: ask for the ABI version

_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3


def _all_rights(abi: int) -> int:
    rights = (1 << 13) - 1  # ABI 1: execute .. make_sym
    if abi >= 2:
        rights |= 1 << 13  # refer
    if abi >= 3:
        rights |= 1 << 14  # truncate
    if abi >= 5:
        rights |= 1 << 15  # ioctl on devices
    return rights


def _file_rights(abi: int) -> int:
    rights = _EXECUTE | _WRITE_FILE | _READ_FILE
    if abi >= 3:
        rights |= 1 << 14
    if abi >= 5:
        rights |= 1 << 15
    return rights


def abi() -> int:
    """The kernel's Landlock ABI version, 0 where there is none."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return 0
    libc.syscall.restype = ctypes.c_long
    version = libc.syscall(_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(_VERSION))
    return max(0, int(version))


def restrict(read: list[str], write: list[str]) -> int:
    """Confine this process (and what it starts) to ``read`` and ``write``; the ABI, or 0."""
    version = abi()
    if version <= 0:
        return 0
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    handled = _all_rights(version)
    fields = [handled]
    if version >= 4:
        fields.append(0b11)  # bind and connect TCP
    if version >= 6:
        fields.append(0b11)  # abstract UNIX sockets and signals outside the sandbox
    attr = struct.pack(f"<{len(fields)}Q", *fields)
    ruleset = libc.syscall(_CREATE, attr, ctypes.c_size_t(len(attr)), ctypes.c_uint32(0))
    if ruleset < 0:
        return 0
    try:
        reading = _EXECUTE | _READ_FILE | _READ_DIR
        for paths, rights in ((read, reading), (write, handled)):
            for path in paths:
                try:
                    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                except OSError:
                    continue
                try:
                    allowed = rights
                    if not os.path.isdir(path):
                        allowed &= _file_rights(version)
                    rule = struct.pack("<Qi", allowed, fd)
                    libc.syscall(
                        _ADD_RULE,
                        ctypes.c_int(ruleset),
                        ctypes.c_int(_RULE_PATH_BENEATH),
                        rule,
                        ctypes.c_uint32(0),
                    )
                finally:
                    os.close(fd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return 0
        if libc.syscall(_RESTRICT, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            return 0
    finally:
        os.close(ruleset)
    return version
