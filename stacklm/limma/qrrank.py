"""Rank detection as R's ``lm.fit`` (LINPACK ``dqrdc2`` with limited column pivoting): which
design columns are estimable (:func:`stacklm.rstats.qr.estimable_columns`, re-exported here), and
which are aliased with which (:func:`aliased_columns`, named in the full-rank errors)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from stacklm.rstats.qr import QR_TOLERANCE, estimable_columns

__all__ = ["QR_TOLERANCE", "aliased_columns", "estimable_columns"]


def aliased_columns(X: np.ndarray, names: Sequence[str]) -> dict[str, list[str]]:
    """For each column that is a linear combination of earlier ones, the columns it is made of."""
    keep = estimable_columns(X)
    out: dict[str, list[str]] = {}
    kept_idx = np.flatnonzero(keep)
    for j in np.flatnonzero(~keep):
        earlier = kept_idx[kept_idx < j]
        if earlier.size == 0:
            out[names[j]] = []
            continue
        coef, *_ = np.linalg.lstsq(X[:, earlier], X[:, j], rcond=None)
        scale = np.abs(coef).max() if coef.size else 0.0
        out[names[j]] = [
            names[k] for k, c in zip(earlier, coef, strict=True) if abs(c) > 1e-8 * scale
        ]
    return out
