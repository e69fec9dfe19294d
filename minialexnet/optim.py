"""The paper's optimizer and learning-rate schedules [5].

``SGD`` is stochastic gradient descent with momentum and weight decay, in the
paper's own form (velocity ``v`` holds the *step*, learning rate included)::

    v <- momentum * v - weight_decay * lr * w - lr * grad
    w <- w + v

``PlateauSchedule`` divides the learning rate by 10 when the validation error
stops improving, three times, and then says training is over, as the paper did.
``StepSchedule`` divides it every ``every`` epochs (a simpler, fixed alternative).
``LinearSchedule`` lowers it in a straight line to zero over the run, batch by
batch (not the paper's: the rule for a fixed budget of steps or minutes).

Typical loop::

    opt = SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    sched = PlateauSchedule(opt)
    for epoch in ...:
        for x, y in batches:
            ...forward, loss, backward (fills the grads in place)...
            opt.step()
            sched.on_batch(done)  # the share of the run done, in [0, 1]; only linear uses it
        if sched.step(val_error): print("lr ->", opt.lr)
        if sched.exhausted: break

Section numbers ([5]) refer to the paper, summarised in ``paper.md``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .backend import get_array_module, to_numpy

try:  # the one-launch update for CuPy arrays; absent from student copies (SGD is an exercise)
    from . import fused
except ImportError:  # pragma: no cover - only in a released student copy
    fused = None  # type: ignore[assignment]

__all__ = ["SGD", "PlateauSchedule", "StepSchedule", "LinearSchedule"]


def _real(value: Any, cls: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{cls}: {name} must be a real number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{cls}: {name} must be finite, got {value!r}")
    return float(value)


def _int(value: Any, cls: str, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{cls}: {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _on_device_of(array: Any) -> contextlib.AbstractContextManager[Any]:
    """The context that makes ``array``'s device current: its GPU for CuPy, nothing for NumPy."""
    if get_array_module(array) is np:
        return contextlib.nullcontext()
    return array.device  # cupy.cuda.Device is a context manager


def _missing(a: Iterable[str], b: Iterable[str]) -> list[str]:
    return sorted(set(a) - set(b))


class SGD:
    """Stochastic gradient descent with momentum and weight decay, as the paper's [5].

    The paper's update rule, for every weight ``w`` with gradient ``grad`` of the
    batch loss (batch 128, ``momentum`` 0.9, ``weight_decay`` 0.0005)::

        v_{i+1} = 0.9 * v_i - 0.0005 * lr * w_i - lr * <dL/dw | w_i>_{D_i}
        w_{i+1} = w_i + v_{i+1}

    This is **not** PyTorch's ``torch.optim.SGD``, which keeps the learning rate
    outside the velocity (``b <- momentum * b + (grad + wd * w); w <- w - lr * b``).
    The two agree while ``lr`` is constant, but differ right after the learning
    rate changes: here the velocity still carries steps taken with the old rate,
    there the old velocity is suddenly rescaled by the new one.

    Weight decay applies to every parameter, biases included (the formula makes no
    exception). Velocities start at zero, one per parameter, on the parameter's
    device; ``step()`` updates velocities and parameters in place (the arrays keep
    their identity, so a model holding them sees the change).

    Args:
        parameters: ``(name, param, grad)`` triples, e.g. ``model.parameters()``;
            read once into a list. The ``grad`` arrays must be refilled in place by
            each backward pass (the layers do), since only these references are kept.
        lr, momentum, weight_decay: plain attributes; a schedule changes ``lr``.
            ``lr > 0``, ``0 <= momentum < 1``, ``weight_decay >= 0``.
    """

    def __init__(
        self,
        parameters: Iterable[tuple[str, Any, Any]],
        lr: float = 0.01,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
    ) -> None:
        self.lr, self.momentum, self.weight_decay = self._check_hyper(lr, momentum, weight_decay)
        self.params: list[tuple[str, Any, Any]] = []
        names: set[str] = set()
        for item in parameters:
            if not (isinstance(item, tuple) and len(item) == 3):
                raise TypeError(
                    f"SGD: parameters must be (name, param, grad) triples, got {item!r}"
                )
            name, param, grad = item
            if not isinstance(name, str):
                raise TypeError(f"SGD: parameter names must be strings, got {name!r}")
            if name in names:
                raise ValueError(f"SGD: duplicate parameter name {name!r}")
            if getattr(param, "shape", None) != getattr(grad, "shape", None):
                raise ValueError(
                    f"SGD: gradient of {name!r} has shape {getattr(grad, 'shape', None)}, "
                    f"the parameter has {getattr(param, 'shape', None)}"
                )
            names.add(name)
            self.params.append((name, param, grad))
        if not self.params:
            raise ValueError("SGD: got no parameters to optimize")
        self.velocity: dict[str, Any] = {}
        for name, param, _ in self.params:
            with _on_device_of(param):
                self.velocity[name] = get_array_module(param).zeros_like(param)

    @staticmethod
    def _check_hyper(lr: Any, momentum: Any, weight_decay: Any) -> tuple[float, float, float]:
        lr = _real(lr, "SGD", "lr")
        momentum = _real(momentum, "SGD", "momentum")
        weight_decay = _real(weight_decay, "SGD", "weight_decay")
        if lr <= 0:
            raise ValueError(f"SGD: lr must be > 0, got {lr!r}")
        if not 0 <= momentum < 1:
            raise ValueError(f"SGD: momentum must be in [0, 1), got {momentum!r}")
        if weight_decay < 0:
            raise ValueError(f"SGD: weight_decay must be >= 0, got {weight_decay!r}")
        return lr, momentum, weight_decay

    def step(self) -> None:
        """One update of every parameter with its current gradient (the paper's rule)."""
        lr, momentum, decay = self.lr, self.momentum, self.weight_decay
        for name, w, grad in self.params:
            v = self.velocity[name]
            with _on_device_of(w):
                if fused is not None and fused.enabled(w):  # CuPy: the same update, one launch
                    fused.sgd_update(w, grad, v, lr, momentum, decay)
                    continue
                ### BEGIN SOLUTION
                v *= momentum
                if decay:
                    v -= (decay * lr) * w
                v -= lr * grad
                w += v
                ### END SOLUTION

    def state_dict(self) -> dict[str, Any]:
        """``{"lr", "momentum", "weight_decay", "velocity": {name: host NumPy copy}}``."""
        return {
            "lr": self.lr,
            "momentum": self.momentum,
            "weight_decay": self.weight_decay,
            "velocity": {name: np.array(to_numpy(v)) for name, v in self.velocity.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore hyperparameters and velocities (copied onto each parameter's device).

        Raises ``ValueError`` naming missing or unexpected parameters and the first
        velocity whose shape differs; nothing is changed when it raises.
        """
        keys = ("lr", "momentum", "weight_decay", "velocity")
        if not isinstance(state, Mapping) or _missing(keys, state):
            got = sorted(state) if isinstance(state, Mapping) else type(state).__name__
            raise ValueError(f"SGD.load_state_dict: expected the keys {list(keys)}, got {got}")
        hyper = self._check_hyper(state["lr"], state["momentum"], state["weight_decay"])
        velocity = state["velocity"]
        if not isinstance(velocity, Mapping):
            raise ValueError("SGD.load_state_dict: 'velocity' must be a dict {name: array}")
        missing = _missing(self.velocity, velocity)
        unexpected = _missing(velocity, self.velocity)
        if missing or unexpected:
            raise ValueError(
                f"SGD.load_state_dict: velocity names do not match the parameters; "
                f"missing {missing}, unexpected {unexpected}"
            )
        host = {name: np.asarray(to_numpy(v)) for name, v in velocity.items()}
        for name, v in self.velocity.items():
            if host[name].shape != v.shape:
                raise ValueError(
                    f"SGD.load_state_dict: velocity {name!r} has shape {host[name].shape}, "
                    f"the parameter has {v.shape}"
                )
        self.lr, self.momentum, self.weight_decay = hyper
        for name, v in self.velocity.items():
            with _on_device_of(v):
                v[...] = get_array_module(v).asarray(host[name], dtype=v.dtype)

    def __repr__(self) -> str:
        return (
            f"SGD({len(self.params)} parameters, lr={self.lr:g}, momentum={self.momentum:g}, "
            f"weight_decay={self.weight_decay:g})"
        )


class PlateauSchedule:
    """The paper's schedule [5]: divide ``lr`` by 10 when validation error stops improving.

    "The heuristic which we followed was to divide the learning rate by 10 when
    the validation error rate stopped improving with the current learning rate.
    [...] reduced three times prior to termination."

    Call ``step(val_error)`` once per epoch. An epoch *improves* when
    ``val_error < best - threshold`` (``best``: the lowest error so far, kept
    across reductions). After ``patience`` epochs in a row without improvement
    the schedule multiplies ``optimizer.lr`` by ``factor`` and restarts the count.
    After ``max_reductions`` reductions, the next plateau sets ``exhausted`` (the
    paper stopped training there) instead of reducing again.

    ``chance_error`` (optional, e.g. ``1 - 1/classes``): while the validation error
    is still within 5% of chance (``>= 0.95 * chance_error``) the network has not
    started to learn, and those epochs do not count towards ``patience``: that
    is a slow start, not a plateau of the learning rate, and cutting the rate
    there only makes the start slower.

    Attributes: ``best`` (``None`` before the first step), ``bad_epochs``,
    ``reductions``, ``exhausted``. ``state_dict()`` is JSON-able.
    """

    def __init__(
        self,
        optimizer: SGD,
        patience: int = 2,
        factor: float = 0.1,
        max_reductions: int = 3,
        threshold: float = 0.0,
        chance_error: float | None = None,
    ) -> None:
        cls = "PlateauSchedule"
        self.optimizer = optimizer
        self.patience = _int(patience, cls, "patience", 1)
        self.factor = _real(factor, cls, "factor")
        if not 0 < self.factor < 1:
            raise ValueError(f"{cls}: factor must be in (0, 1), got {factor!r}")
        self.max_reductions = _int(max_reductions, cls, "max_reductions", 0)
        self.threshold = _real(threshold, cls, "threshold")
        if self.threshold < 0:
            raise ValueError(f"{cls}: threshold must be >= 0, got {threshold!r}")
        self.chance_error = (
            None if chance_error is None else _real(chance_error, cls, "chance_error")
        )
        if self.chance_error is not None and not 0 < self.chance_error <= 1:
            raise ValueError(f"{cls}: chance_error must be in (0, 1], got {chance_error!r}")
        self.best: float | None = None
        self.bad_epochs = 0
        self.reductions = 0
        self.exhausted = False

    reason = "validation error stopped improving"
    """Why this schedule reduces the learning rate, for messages."""

    def on_batch(self, done: float) -> None:
        """Per batch: nothing (this schedule acts on epochs)."""

    def step(self, val_error: float) -> bool:
        """Record one epoch's validation error; True when it just reduced the learning rate.

        A NaN error (a diverged run) counts as no improvement.
        """
        if isinstance(val_error, bool) or not isinstance(
            val_error, (int, float, np.integer, np.floating)
        ):
            raise ValueError(f"PlateauSchedule.step: val_error must be a number, got {val_error!r}")
        val_error = float(val_error)
        if self.best is None or val_error < self.best - self.threshold:
            self.best = val_error
            self.bad_epochs = 0
            return False
        if self.chance_error is not None and val_error >= 0.95 * self.chance_error:
            return False  # not started learning yet: not a plateau
        self.bad_epochs += 1
        if self.bad_epochs < self.patience or self.exhausted:
            return False
        self.bad_epochs = 0
        if self.reductions >= self.max_reductions:
            self.exhausted = True
            return False
        self.optimizer.lr *= self.factor
        self.reductions += 1
        return True

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint needs to continue the schedule (JSON-able)."""
        return {
            "kind": "plateau",
            "best": self.best,
            "bad_epochs": self.bad_epochs,
            "reductions": self.reductions,
            "exhausted": self.exhausted,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a :meth:`state_dict`."""
        if not isinstance(state, Mapping) or state.get("kind") != "plateau":
            raise ValueError(
                "PlateauSchedule.load_state_dict: not a PlateauSchedule state "
                f"(kind {state.get('kind') if isinstance(state, Mapping) else state!r})"
            )
        self.best = None if state["best"] is None else float(state["best"])
        self.bad_epochs = int(state["bad_epochs"])
        self.reductions = int(state["reductions"])
        self.exhausted = bool(state["exhausted"])


class StepSchedule:
    """Multiply ``optimizer.lr`` by ``factor`` every ``every`` epochs (not the paper's rule).

    ``step(val_error=None)`` once per epoch (the error is ignored); True when it
    just reduced the learning rate. ``exhausted`` is always False: the caller
    decides when to stop.
    """

    exhausted = False

    def __init__(self, optimizer: SGD, every: int = 10, factor: float = 0.1) -> None:
        self.optimizer = optimizer
        self.every = _int(every, "StepSchedule", "every", 1)
        self.factor = _real(factor, "StepSchedule", "factor")
        if not 0 < self.factor < 1:
            raise ValueError(f"StepSchedule: factor must be in (0, 1), got {factor!r}")
        self.epoch = 0

    @property
    def reason(self) -> str:
        """Why this schedule reduces the learning rate, for messages."""
        return f"{self.every} more epochs done (step schedule)"

    def on_batch(self, done: float) -> None:
        """Per batch: nothing (this schedule acts on epochs)."""

    def step(self, val_error: float | None = None) -> bool:
        """After an epoch: divide lr by 10 if ``every`` epochs have passed; True if it did."""
        self.epoch += 1
        if self.epoch % self.every:
            return False
        self.optimizer.lr *= self.factor
        return True

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint needs to continue the schedule (JSON-able)."""
        return {"kind": "step", "epoch": self.epoch}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a :meth:`state_dict`."""
        if not isinstance(state, Mapping) or state.get("kind") != "step":
            raise ValueError("StepSchedule.load_state_dict: not a StepSchedule state")
        self.epoch = int(state["epoch"])


class LinearSchedule:
    """Lower ``optimizer.lr`` in a straight line from its start value to zero over the run.

        lr = lr_start * (1 - done),   done = share of the run done, in [0, 1]

    Not the paper's schedule: it is the rule for a fixed budget. When a run can
    afford only a few epochs (or minutes), decaying linearly to zero over exactly
    that budget ends at a lower error than steps of /10 placed by hand (Li, Yumer
    and Ramanan, "Budgeted training", ICLR 2020). The caller says after every batch
    how much of the run is done: ``on_batch(done)``, e.g. ``max(batches done /
    batches planned, minutes spent / minutes allowed)``, so that the rate reaches
    zero at the end of the epochs or at the time limit, whichever comes first.
    ``done`` never goes back (a smaller value than before is ignored), so a
    resumed run continues from where it was.

    ``step(val_error=None)`` per epoch changes nothing and returns False;
    ``exhausted`` is always False. ``state_dict()`` is JSON-able.
    """

    exhausted = False
    reason = "linear decay over the run"

    def __init__(self, optimizer: SGD) -> None:
        self.optimizer = optimizer
        self.lr_start = float(optimizer.lr)
        self.done = 0.0

    def on_batch(self, done: float) -> None:
        """Set ``lr = lr_start * (1 - done)`` for the next batch (done clipped to [0, 1])."""
        done = _real(done, "LinearSchedule", "done")
        self.done = min(max(self.done, done), 1.0)
        self.optimizer.lr = self.lr_start * (1.0 - self.done)

    def step(self, val_error: float | None = None) -> bool:
        """After an epoch: nothing (the lr moves per batch in ``on_batch``); False."""
        return False

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint needs to continue the schedule (JSON-able)."""
        return {"kind": "linear", "lr_start": self.lr_start, "done": self.done}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a :meth:`state_dict`."""
        if not isinstance(state, Mapping) or state.get("kind") != "linear":
            raise ValueError("LinearSchedule.load_state_dict: not a LinearSchedule state")
        self.lr_start = float(state["lr_start"])
        self.done = float(state["done"])
