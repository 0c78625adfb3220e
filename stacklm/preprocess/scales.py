"""Input scales: log2 with an offset, methylation beta -> M-values, genotype dosage checks, and
:func:`transform_values` (the analysis scale of a block of input values, as configured)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

# --------------------------------------------------------------------------------------------------
# input scales


def _as_matrix(values) -> np.ndarray:
    out = np.array(values, dtype=np.float64, copy=True)
    if out.ndim != 2:
        raise ValueError(f"expected a features x samples matrix, got {out.ndim} dimension(s)")
    return out


def _where_bad(bad: np.ndarray, x: np.ndarray, feature_ids=None, samples=None) -> str:
    """'of the N values, in k feature(s), first feature 'f', sample 's' (value v)': where the
    values flagged by ``bad`` are (rows are features, columns samples; positions when no names)."""
    bad2 = np.atleast_2d(bad)
    x2 = np.atleast_2d(x)
    r, c = np.unravel_index(int(np.argmax(bad2)), bad2.shape)  # the first in row-major order
    if feature_ids is not None:
        feature = f"feature {str(np.asarray(feature_ids, dtype=object)[r])!r}"
    else:
        feature = f"row {r + 1}"
    sample = f"sample {str(samples[c])!r}" if samples is not None else f"column {c + 1}"
    n_features = int(bad2.any(axis=1).sum())
    return (
        f"of the {bad2.size} values, in {n_features} feature(s), first {feature}, {sample} "
        f"(value {x2[r, c]:g})"
    )


def _in_range(values, upper: float, what: str, advice: str, feature_ids, samples) -> np.ndarray:
    """``values`` as float64, refused unless they lie in [0, upper] (NaN allowed): the error counts
    the values outside, gives their range and names the first by feature and sample."""
    x = np.asarray(values, dtype=np.float64)
    bad = (x < 0) | (x > upper)
    if bad.any():
        raise ValueError(
            f"{what} must lie in [0, {upper:g}]: {int(bad.sum())} value(s) outside (range "
            f"{np.nanmin(x):g} .. {np.nanmax(x):g}) {_where_bad(bad, x, feature_ids, samples)}; "
            f"{advice}"
        )
    return x


def log2_transform(values, offset: float = 1.0, feature_ids=None, samples=None) -> np.ndarray:
    """``log2(values + offset)``; NaN stays NaN.  Raises ValueError if ``values + offset <= 0`` anywhere
    (the log would be -Inf or undefined), naming how many values, and the first by feature and sample
    (``feature_ids`` / ``samples`` name the rows / columns; positions without them)."""
    x = np.asarray(values, dtype=np.float64)
    shifted = x + offset
    bad = shifted <= 0  # NaN compares False
    if bad.any():
        count = int(bad.sum())
        raise ValueError(
            f"log2 transform: {count} value(s) are <= -offset ({-offset:g}; smallest value "
            f"{np.nanmin(x):g}) {_where_bad(bad, x, feature_ids, samples)}, so "
            f"log2(value + {offset:g}) is undefined; raise the offset above {-np.nanmin(x):g}, or "
            "switch the log2 transform off if the data are already on a log scale"
        )
    return np.log2(shifted)


def beta_to_m(values, eps: float = 1e-6, feature_ids=None, samples=None) -> np.ndarray:
    """Methylation beta values to M-values ``log2(b / (1 - b))`` after clipping ``b`` to
    ``[eps, 1 - eps]`` (as ``pmin(pmax(b, eps), 1 - eps)`` in R).  Raises ValueError for values
    outside [0, 1], naming the first by feature and sample; NaN stays NaN."""
    b = _in_range(
        values,
        1,
        "beta values",
        "give beta values, or set the input scale to 'expression' if these are already M-values",
        feature_ids,
        samples,
    )
    clipped = np.clip(b, eps, 1.0 - eps)
    return np.log2(clipped / (1.0 - clipped))


def check_dosage(values, feature_ids=None, samples=None) -> np.ndarray:
    """Check genotype dosages lie in [0, 2] (NaN allowed) and return them as float64; the error
    names the first value outside by feature and sample."""
    d = _in_range(
        values,
        2,
        "dosages",
        "code genotypes as 0/1/2 copies of the effect allele (or expected dosages)",
        feature_ids,
        samples,
    )
    return d


def transform_values(
    values: np.ndarray,
    input_scale: str,
    beta_epsilon: float,
    normalize: Mapping,
    feature_ids=None,
    samples=None,
) -> np.ndarray:
    """Put values on the analysis scale: M-values for beta input, log2(x + offset) when asked.
    ``feature_ids`` / ``samples`` (the rows' ids, the columns' names) name the first value the
    scale cannot take in the error."""
    names = {"feature_ids": feature_ids, "samples": samples}
    if input_scale == "counts":  # stored as counts (checked by normalize_matrix); voom logs them
        return values
    if input_scale == "beta":
        return beta_to_m(values, eps=beta_epsilon, **names)
    if input_scale == "dosage":
        check_dosage(values, **names)
        return values
    if normalize.get("log2"):
        return log2_transform(values, offset=normalize.get("offset", 1.0), **names)
    return values
