"""Array-namespace dispatch for `tsallis.core` (NumPy, torch, SymPy) without importing torch or SymPy.

`core` must stay importable without torch and SymPy. We recognise their objects through
`sys.modules`: if a module was never imported, no object of it can exist.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np


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

    log, exp, expm1, log1p, where = np.log, np.exp, np.expm1, np.log1p, np.where

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
        self.log1p, self.where = torch.log1p, torch.where

    def asarray(self, x):
        return x if x.is_floating_point() else x.to(self.t.get_default_dtype())

    def logsumexp(self, x, axis=-1, keepdims=False):
        return self.t.logsumexp(x, dim=axis, keepdim=keepdims)

    def all_finite(self, x) -> bool:
        return bool(self.t.isfinite(x).all())

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
    """Raise a ValueError unless q is a real number in [0, 1] (SymPy symbols pass through)."""
    if is_sympy(q):
        return
    if is_torch(q) or isinstance(q, np.ndarray):
        raise ValueError(f"{name} must be a Python float in [0, 1], not an array; got {type(q).__name__}")
    try:
        qf = float(q)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, 1]; got {q!r}") from None
    if not (0.0 <= qf <= 1.0) or math.isnan(qf):
        raise ValueError(f"{name} must lie in [0, 1] (0 = RLVR, 1 = marginal likelihood); got {q!r}")
