"""Array-namespace dispatch for `tsallis.core` (NumPy, torch, SymPy) without importing torch or SymPy.

`core` must stay importable without torch and SymPy. We recognise their objects through
`sys.modules`: if a module was never imported, no object of it can exist.
"""

from __future__ import annotations

import numbers
import sys
from typing import Any

import numpy as np

from tsallis.errors import InputError


def is_torch(x: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def is_sympy(x: Any) -> bool:
    sympy = sys.modules.get("sympy")
    return sympy is not None and isinstance(x, sympy.Basic)


class _NumPy:
    """The operations `core` needs, for NumPy arrays (float64 unless the input says otherwise)."""

    name = "numpy"

    @staticmethod
    def asarray(x):
        x = np.asarray(x)
        return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)

    log, exp, expm1, log1p, where, zeros_like = np.log, np.exp, np.expm1, np.log1p, np.where, np.zeros_like

    @staticmethod
    def logsumexp(x, axis=-1, keepdims=False):
        m = np.max(x, axis=axis, keepdims=True)
        m = np.where(np.isfinite(m), m, 0.0)
        out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
        return out if keepdims else np.squeeze(out, axis=axis)

    @staticmethod
    def all_finite(x) -> bool:
        return bool(np.all(np.isfinite(x)))

    @staticmethod
    def all_true(mask) -> bool:
        return bool(mask.all()) if isinstance(mask, np.ndarray) else bool(mask)  # .all() skips np.all's dispatch

    @staticmethod
    def first(x, mask):
        """The first element of x where mask is False, as a Python float (for error messages)."""
        return float(np.asarray(x)[~np.asarray(mask)].flat[0])

    @staticmethod
    def argmax_mask(x):
        """Boolean mask of the (first) maximum along the last axis."""
        return np.arange(x.shape[-1]) == np.argmax(x, axis=-1)[..., None]

    @staticmethod
    def amax(x, axis=-1):
        return np.max(x, axis=axis)

    @staticmethod
    def sum(x, axis=-1, keepdims=False):
        return np.sum(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def mean(x, axis=None, keepdims=False):
        return np.mean(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def std(x, axis=None, keepdims=False):
        return np.std(x, axis=axis, ddof=1, keepdims=keepdims)

    @staticmethod
    def isclose_zero(x):
        return np.isclose(x, 0.0)


class _Torch:
    """The same operations for torch tensors (imported lazily: only when a tensor was passed)."""

    name = "torch"

    def __init__(self):
        import torch

        self.t = torch
        self.log, self.exp, self.expm1 = torch.log, torch.exp, torch.expm1
        self.log1p, self.where, self.zeros_like = torch.log1p, torch.where, torch.zeros_like

    def asarray(self, x):
        return x if x.is_floating_point() else x.to(self.t.get_default_dtype())

    def logsumexp(self, x, axis=-1, keepdims=False):
        return self.t.logsumexp(x, dim=axis, keepdim=keepdims)

    def all_finite(self, x) -> bool:
        return bool(self.t.isfinite(x).all())

    def all_true(self, mask) -> bool:
        return bool(mask.all())

    def first(self, x, mask):
        return float(x[~mask].flatten()[0].item())

    def argmax_mask(self, x):
        return self.t.arange(x.shape[-1], device=x.device) == x.argmax(dim=-1, keepdim=True)

    def amax(self, x, axis=-1):
        return self.t.amax(x, dim=axis)

    def sum(self, x, axis=-1, keepdims=False):
        return self.t.sum(x, dim=axis, keepdim=keepdims)

    def mean(self, x, axis=None, keepdims=False):
        return x.mean() if axis is None else x.mean(dim=axis, keepdim=keepdims)

    def std(self, x, axis=None, keepdims=False):
        return x.std() if axis is None else x.std(dim=axis, keepdim=keepdims)  # Bessel, like TRL

    def isclose_zero(self, x):
        return self.t.isclose(x, self.t.zeros_like(x))


_TORCH: _Torch | None = None


def namespace(x: Any):
    """The array namespace for `x`: torch for a tensor, NumPy for anything else numeric."""
    global _TORCH
    if is_torch(x):
        if _TORCH is None:
            _TORCH = _Torch()
        return _TORCH
    return _NumPy


def check_q(q: Any, name: str = "q") -> None:
    """Raise InputError unless q is a real number in [0, 1] (SymPy symbols pass through).

    Booleans, strings and arrays are refused: `q="0.5"` or `q=True` would otherwise pass `float(q)`, and a
    tensor q would broadcast silently (STYLE.md section 3).
    """
    if is_sympy(q):
        return
    if is_torch(q) or isinstance(q, np.ndarray):
        raise InputError(f"{name} must be a Python float in [0, 1], not an array; got {type(q).__name__}")
    if isinstance(q, (bool, np.bool_)) or not isinstance(q, numbers.Real):
        raise InputError(f"{name} must be a number in [0, 1] (0 = RLVR, 1 = marginal likelihood); "
                         f"got {q!r} of type {type(q).__name__}")
    if not 0.0 <= float(q) <= 1.0:  # also refuses NaN
        raise InputError(f"{name} must lie in [0, 1] (0 = RLVR, 1 = marginal likelihood); got {q!r}")


def check_values(x: Any, xp: Any, ok: Any, name: str, rule: str) -> None:
    """Raise InputError naming `name` unless the boolean mask `ok` holds everywhere; `rule` says what must hold."""
    if not xp.all_true(ok):
        raise InputError(f"{name} must satisfy {rule} elementwise; got {xp.first(x, ok)!r}")


def check_flag(value: Any, name: str) -> None:
    """Raise InputError unless value is a bool (a string such as "no" would be truthy)."""
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name} must be True or False; got {value!r} of type {type(value).__name__}")
