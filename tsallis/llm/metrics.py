"""p@1, p@k and maj@k from k scored samples per prompt (paper §7: p@1, p@16, m@16 from 16 samples).

Inputs are a boolean matrix `correct` of shape (N, k) (N prompts, k samples each) and, for maj@k, the
matching (N, k) vote keys (normalized answers, None for an unparseable answer). Outputs are per-prompt
arrays of shape (N,); the reported number is their mean.

Rules (ours; the paper states none of them):
- p@1 is the mean over the k samples (the paper's "single-sample accuracy"), not a greedy decode.
- p@k is "any of the k samples is correct"; `pass_at_k_unbiased` gives Chen et al.'s estimator for k < n.
- maj@k: unparseable answers (key None) do not vote; if none parse, the vote is wrong. The winner is the
  key with the most votes; a tie is broken by the earliest first occurrence among the tied keys
  (`ties="first"`, as verl), or counted as wrong (`ties="wrong"`: a tie is not a majority). The winner is
  scored by the correctness of its first sample.

NumPy only (no torch).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

Ties = Literal["first", "wrong"]


def _as_matrix(correct: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    arr = np.asarray(correct)
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(f"correct must have shape (N prompts, k samples) with k >= 1, got {arr.shape}")
    return arr.astype(bool)


def pass_at_1(correct: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """p@1 per prompt: the fraction of the k samples that are correct. `correct`: (N, k) -> (N,)."""
    return _as_matrix(correct).mean(axis=1)


def pass_at_k(correct: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """p@k per prompt: 1.0 if any of the k samples is correct. `correct`: (N, k) -> (N,)."""
    return _as_matrix(correct).any(axis=1).astype(np.float64)


def pass_at_k_unbiased(correct: npt.ArrayLike, k: int) -> npt.NDArray[np.float64]:
    """Chen et al. (2021) unbiased pass@k from n >= k samples: 1 - C(n - c, k) / C(n, k) per prompt."""
    c_matrix = _as_matrix(correct)
    n = c_matrix.shape[1]
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, n={n}], got {k}")
    c = c_matrix.sum(axis=1)
    # C(n-c, k)/C(n, k) = prod_{i=n-c+1}^{n} (1 - k/i), stable for large n (Codex paper's numerics)
    out = np.empty(len(c))
    for row, ci in enumerate(c):
        out[row] = 1.0 if n - ci < k else 1.0 - np.prod(1.0 - k / np.arange(n - ci + 1, n + 1))
    return out


def majority_index(keys: Sequence[Hashable | None], *, ties: Ties = "first") -> int | None:
    """Index of the sample that represents the majority answer among `keys`, or None when there is none.

    None keys do not vote. Returns None when no key parses, or on a tie with `ties="wrong"`. With
    `ties="first"`, the tied key whose first occurrence is earliest wins.

    >>> majority_index(["b", None, "a", "a", "b"])  # a and b tie at 2; b appears first
    0
    >>> majority_index(["b", None, "a", "a", "b"], ties="wrong") is None
    True
    """
    if ties not in ("first", "wrong"):
        raise ValueError(f"ties must be 'first' or 'wrong', got {ties!r}")
    counts: dict[Hashable, int] = {}
    first: dict[Hashable, int] = {}
    for i, key in enumerate(keys):
        if key is None:
            continue
        counts[key] = counts.get(key, 0) + 1
        first.setdefault(key, i)
    if not counts:
        return None
    top = max(counts.values())
    winners = [key for key, n in counts.items() if n == top]  # dict order = order of first occurrence
    if len(winners) > 1 and ties == "wrong":
        return None
    return first[winners[0]]


def maj_at_k(
    correct: npt.ArrayLike, keys: Sequence[Sequence[Hashable | None]], *, ties: Ties = "first"
) -> npt.NDArray[np.float64]:
    """maj@k per prompt: the correctness of the majority answer. `correct`, `keys`: (N, k) -> (N,)."""
    c = _as_matrix(correct)
    if len(keys) != c.shape[0] or any(len(row) != c.shape[1] for row in keys):
        raise ValueError(f"keys must have the shape of correct {c.shape}")
    out = np.zeros(c.shape[0])
    for row, row_keys in enumerate(keys):
        idx = majority_index(row_keys, ties=ties)
        out[row] = float(idx is not None and c[row, idx])
    return out


def summarize(
    correct: npt.ArrayLike, keys: Sequence[Sequence[Hashable | None]], *, ties: Ties = "first", k: int | None = None
) -> dict[str, float]:
    """Mean p@1, p@k and maj@k over prompts, keyed "p@1", "p@{k}", "maj@{k}", from n >= k samples per prompt
    (k = None: k = n). p@1 is the mean over all n; p@k is Chen et al.'s unbiased estimator (`pass_at_k_unbiased`,
    the plain "any of the k" when n = k), with its standard error over prompts "p@{k}_se" (0 for one prompt);
    maj@k votes over the first k samples."""
    c = _as_matrix(correct)
    k = c.shape[1] if k is None else k
    pk = pass_at_k_unbiased(c, k)
    return {
        "p@1": float(pass_at_1(c).mean()),
        f"p@{k}": float(pk.mean()),
        f"p@{k}_se": float(pk.std(ddof=1) / np.sqrt(len(pk))) if len(pk) > 1 else 0.0,
        f"maj@{k}": float(maj_at_k(c[:, :k], [row[:k] for row in keys], ties=ties).mean()),
    }
