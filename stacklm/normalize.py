"""Input scales, between-sample normalization and feature filters for G x n matrices (features in rows).

* :func:`log2_transform`, :func:`beta_to_m`, :func:`check_dosage` - input scale checks/conversions.
* :func:`quantile_normalize` - limma's ``normalizeQuantiles`` (what ``normalizeBetweenArrays(x,
  method="quantile")`` calls for a matrix), including its handling of missing values.
* :func:`cyclic_loess` - limma's ``normalizeCyclicLoess`` (methods ``"fast"``, ``"pairs"``, ``"affy"``)
  with ``loessFit`` without weights, i.e. R's ``lowess`` (a port of R's C ``clowess``: :func:`lowess`).
* :func:`feature_filter` - missingness / average / variance filters with per-filter counts.

Missing values are NaN.  R's ``rowMeans`` accumulates in long double; so does this module (numpy
``longdouble``, 80-bit on x86-64), so the quantile target is the same double as R's.
"""

from __future__ import annotations

import math

import numpy as np

# --------------------------------------------------------------------------------------------------
# input scales


def _as_matrix(values) -> np.ndarray:
    out = np.array(values, dtype=np.float64, copy=True)
    if out.ndim != 2:
        raise ValueError(f"expected a features x samples matrix, got {out.ndim} dimension(s)")
    return out


def log2_transform(values, offset: float = 1.0) -> np.ndarray:
    """``log2(values + offset)``; NaN stays NaN.  Raises ValueError if ``values + offset <= 0`` anywhere
    (the log would be -Inf or undefined)."""
    x = np.asarray(values, dtype=np.float64)
    shifted = x + offset
    bad = shifted <= 0  # NaN compares False
    if bad.any():
        count = int(bad.sum())
        raise ValueError(
            f"log2 transform: {count} value(s) are <= -offset ({-offset:g}; smallest value "
            f"{np.nanmin(x):g}), so log2(value + {offset:g}) is undefined; raise the offset above "
            f"{-np.nanmin(x):g}, or switch the log2 transform off if the data are already on a log "
            "scale"
        )
    return np.log2(shifted)


def beta_to_m(values, eps: float = 1e-6) -> np.ndarray:
    """Methylation beta values to M-values ``log2(b / (1 - b))`` after clipping ``b`` to
    ``[eps, 1 - eps]`` (as ``pmin(pmax(b, eps), 1 - eps)`` in R).  Raises ValueError for values
    outside [0, 1]; NaN stays NaN."""
    b = np.asarray(values, dtype=np.float64)
    bad = (b < 0) | (b > 1)
    if bad.any():
        raise ValueError(
            f"beta values must lie in [0, 1]: {int(bad.sum())} value(s) outside (range "
            f"{np.nanmin(b):g} .. {np.nanmax(b):g}); give beta values, or set the input scale to "
            "'expression' if these are already M-values"
        )
    clipped = np.clip(b, eps, 1.0 - eps)
    return np.log2(clipped / (1.0 - clipped))


def check_dosage(values) -> np.ndarray:
    """Check genotype dosages lie in [0, 2] (NaN allowed) and return them as float64."""
    d = np.asarray(values, dtype=np.float64)
    bad = (d < 0) | (d > 2)
    if bad.any():
        raise ValueError(
            f"dosages must lie in [0, 2]: {int(bad.sum())} value(s) outside (range "
            f"{np.nanmin(d):g} .. {np.nanmax(d):g}); code genotypes as 0/1/2 copies of the "
            "effect allele (or expected dosages)"
        )
    return d


# --------------------------------------------------------------------------------------------------
# helpers mirroring R primitives


def _row_means(x: np.ndarray, na_rm: bool = False) -> np.ndarray:
    """R's ``rowMeans``: columns accumulated in order in long double, divided in long double."""
    acc = np.zeros(x.shape[0], dtype=np.longdouble)
    if not na_rm:
        for j in range(x.shape[1]):
            acc += x[:, j]
        return (acc / x.shape[1]).astype(np.float64)
    count = np.zeros(x.shape[0], dtype=np.int64)
    for j in range(x.shape[1]):
        col = x[:, j]
        ok = ~np.isnan(col)
        acc += np.where(ok, col, 0.0)
        count += ok
    with np.errstate(invalid="ignore", divide="ignore"):
        return (acc / count).astype(np.float64)


def _approx(x: np.ndarray, y: np.ndarray, v: np.ndarray) -> np.ndarray:
    """R's ``approx(x, y, v)$y`` (linear, rule 1) for strictly increasing ``x`` and ``v`` inside
    ``[x[0], x[-1]]``: ``y[i] + (y[j] - y[i]) * ((v - x[i]) / (x[j] - x[i]))`` as in R's C approx1."""
    j = np.clip(np.searchsorted(x, v, side="right"), 1, len(x) - 1)
    i = j - 1
    xi, xj, yi, yj = x[i], x[j], y[i], y[j]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = yi + (yj - yi) * ((v - xi) / (xj - xi))
    out = np.where(v == xi, yi, out)
    out = np.where(v == xj, yj, out)
    out[(v < x[0]) | (v > x[-1])] = np.nan
    return out


def _rank_average(v: np.ndarray) -> np.ndarray:
    """R's ``rank(v)`` (ties averaged) for a vector without NaN."""
    order = np.argsort(v, kind="stable")
    sorted_v = v[order]
    # starts of runs of equal values
    new = np.empty(len(v), dtype=bool)
    new[:1] = True
    new[1:] = sorted_v[1:] != sorted_v[:-1]
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], len(v))  # exclusive
    run_rank = (starts + 1 + ends) / 2.0  # mean of ranks starts+1 .. ends
    ranks = np.empty(len(v), dtype=np.float64)
    ranks[order] = np.repeat(run_rank, ends - starts)
    return ranks


# --------------------------------------------------------------------------------------------------
# quantile normalization


def quantile_normalize(values) -> np.ndarray:
    """limma ``normalizeQuantiles(A, ties=TRUE)`` (= ``normalizeBetweenArrays(A, method="quantile")``).

    Each column's sorted observed values are interpolated (R ``approx``) onto the common grid
    ``(0:(G-1))/(G-1)``; the target is the row mean of these; every observed value gets the target
    interpolated at ``(rank - 1)/(n_obs - 1)`` (ties share the average rank, so tied values stay tied).
    Missing values stay missing.  A column needs at least two observed values (R errors too)."""
    a = _as_matrix(values)
    g, n = a.shape
    if n == 1:
        return a
    if g < 2:
        raise ValueError("quantile normalization needs at least two features")
    grid = np.arange(g) / (g - 1)
    sorted_cols = np.empty((g, n), dtype=np.float64)
    observed = ~np.isnan(a)
    n_obs = observed.sum(axis=0)
    for j in range(n):
        if n_obs[j] < 2:
            raise ValueError(
                f"quantile normalization: sample column {j + 1} has {n_obs[j]} observed value(s); "
                "at least two are needed (remove the sample or impute)"
            )
        s = np.sort(a[observed[:, j], j])
        if n_obs[j] < g:
            sorted_cols[:, j] = _approx(np.arange(n_obs[j]) / (n_obs[j] - 1), s, grid)
        else:
            sorted_cols[:, j] = s
    target = _row_means(sorted_cols)
    out = a
    for j in range(n):
        obs = observed[:, j]
        ranks = _rank_average(a[obs, j])
        out[obs, j] = _approx(grid, target, (ranks - 1) / (n_obs[j] - 1))
    return out


# --------------------------------------------------------------------------------------------------
# lowess (port of R's clowess) and cyclic loess


def _first_true(pred, lo: int, hi: int) -> int:
    """Smallest k in [lo, hi) with pred(k) true for a predicate false...false true...true; hi if none."""
    while lo < hi:
        mid = (lo + hi) // 2
        if pred(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _lowess_plan(x: np.ndarray, ns: int, delta: float):
    """The points clowess fits at, their neighbourhoods, tie copies and interpolated stretches.

    These depend only on ``x`` (sorted), ``ns`` and ``delta``, not on ``y`` or the robustness
    weights, so they are found once for all robustness iterations.  Returns
    ``anchors`` (list of (i, nleft, nright_exclusive, h)), ``copies`` (target, source index arrays)
    and ``interp`` (target, left, right index arrays)."""
    n = len(x)
    anchors = []
    copy_to, copy_from = [], []
    int_to, int_left, int_right = [], [], []
    nleft, last, i = 0, -1, 0
    while True:
        xi = x[i]
        if nleft + ns < n:  # nright = nleft + ns - 1 < n - 1: slide the window while it narrows
            nleft = _first_true(
                lambda k, xi=xi: k + ns >= n or not (xi - x[k] > x[k + ns] - xi), nleft, n - ns + 1
            )
        nright = nleft + ns - 1
        h = max(xi - x[nleft], x[nright] - xi)
        h9 = 0.999 * h
        # lowest() weighs points from nleft on, up to the first one to the right beyond h9
        stop = _first_true(lambda j, xi=xi, h9=h9: x[j] > xi and x[j] - xi > h9, nleft, n)
        anchors.append((i, nleft, stop, h))
        if last < i - 1:
            int_to.append(np.arange(last + 1, i))
            int_left.append(np.full(i - last - 1, last))
            int_right.append(np.full(i - last - 1, i))
        last = i
        cut = x[last] + delta
        beyond = _first_true(lambda j, cut=cut: x[j] > cut, last + 1, n)
        tie_end = _first_true(lambda j, xl=x[last]: x[j] != xl, last + 1, beyond)
        if tie_end > last + 1:
            copy_to.append(np.arange(last + 1, tie_end))
            copy_from.append(np.full(tie_end - last - 1, i))
            last = tie_end - 1
        i = max(last + 1, beyond - 1)
        if last >= n - 1:
            break

    def cat(parts):
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.intp)

    return anchors, (cat(copy_to), cat(copy_from)), (cat(int_to), cat(int_left), cat(int_right))


def lowess(x, y, f: float = 2 / 3, iterations: int = 3, delta: float | None = None) -> np.ndarray:
    """R's ``lowess(x, y, f, iter=iterations, delta)$y`` (C ``clowess``), for ``x`` sorted increasingly.

    ``delta`` defaults to ``0.01 * (max(x) - min(x))`` as in R.  Differences from R: sums are numpy
    (pairwise) sums instead of sequential ones, which changes results by rounding only."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = len(x)
    if n == 0:
        raise ValueError("lowess needs at least one point")
    if n < 2:
        return y.copy()
    if delta is None:
        delta = 0.01 * (x[-1] - x[0])
    ns = max(2, min(n, int(f * n + 1e-7)))
    anchors, (copy_to, copy_from), (int_to, int_left, int_right) = _lowess_plan(x, ns, delta)
    x_range = x[-1] - x[0]
    alpha = (x[int_to] - x[int_left]) / (x[int_right] - x[int_left])
    robustness = np.ones(n)
    ys = np.empty(n)
    for step in range(iterations + 1):
        use_rw = step > 0
        for i, lo, hi, h in anchors:
            xs = x[i]
            xw = x[lo:hi]
            r = np.abs(xw - xs)
            with np.errstate(invalid="ignore", divide="ignore"):
                u = 1.0 - (r / h) * (r / h) * (r / h)
                w = np.where(r <= 0.001 * h, 1.0, u * u * u)
            w[r > 0.999 * h] = 0.0
            if use_rw:
                w *= robustness[lo:hi]
            total = w.sum()
            if total <= 0.0:
                ys[i] = y[i]
                continue
            w /= total
            if h > 0.0:
                center = (w * xw).sum()
                b = xs - center
                dev = xw - center
                c = (w * (dev * dev)).sum()
                if math.sqrt(c) > 0.001 * x_range:
                    b /= c
                    w *= b * dev + 1.0
            ys[i] = (w * y[lo:hi]).sum()
        ys[copy_to] = ys[copy_from]
        ys[int_to] = alpha * ys[int_right] + (1.0 - alpha) * ys[int_left]
        if step == iterations:
            break
        residuals = y - ys
        scale = np.abs(residuals).sum() / n
        abs_res = np.abs(residuals)
        m1 = n // 2
        if n % 2 == 0:
            part = np.partition(abs_res, (n - m1 - 1, m1))
            cmad = 3.0 * (part[m1] + part[n - m1 - 1])
        else:
            cmad = 6.0 * np.partition(abs_res, m1)[m1]
        if cmad < 1e-7 * scale:
            break
        with np.errstate(invalid="ignore", divide="ignore"):
            q = 1.0 - (abs_res / cmad) * (abs_res / cmad)
        robustness = np.where(
            abs_res <= 0.001 * cmad, 1.0, np.where(abs_res <= 0.999 * cmad, q * q, 0.0)
        )
    return ys


def loess_fit(y, x, span: float = 0.3, iterations: int = 4) -> np.ndarray:
    """Fitted values of limma's ``loessFit(y, x, span=span, iterations=iterations)`` without weights:
    ``lowess`` on the pairs where both are finite (fitted NaN elsewhere)."""
    y = np.asarray(y, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    fitted = np.full(len(y), np.nan)
    obs = np.isfinite(y) & np.isfinite(x)
    n_obs = int(obs.sum())
    if n_obs == 0:
        return fitted
    if span < 1.0 / n_obs:
        fitted[obs] = y[obs]
        return fitted
    x_obs, y_obs = x[obs], y[obs]
    order = np.argsort(x_obs, kind="stable")
    x_sorted = x_obs[order]
    smooth = lowess(
        x_sorted,
        y_obs[order],
        f=span,
        iterations=iterations - 1,
        delta=0.01 * (x_sorted[-1] - x_sorted[0]),
    )
    fit_obs = np.empty(n_obs)
    fit_obs[order] = smooth
    fitted[obs] = fit_obs
    return fitted


def cyclic_loess(
    values, span: float = 0.7, iterations: int = 3, method: str = "fast"
) -> np.ndarray:
    """limma ``normalizeCyclicLoess(x, span, iterations, method)`` without weights.

    ``"fast"``: each iteration fits every column's difference from the row means (``rowMeans(x,
    na.rm=TRUE)``) against the row means and subtracts the fit.  ``"pairs"``: every pair of columns,
    in R's order, is corrected by half its M-vs-A curve (as in R, a value missing in one column makes
    the fit missing and so the other column's value missing too).  ``"affy"``: all pair curves of an
    iteration are averaged before adjusting.  Curves are ``loessFit`` (default 4 iterations) = R's
    ``lowess`` with ``delta = 0.01 * diff(range(A))``."""
    if method not in ("fast", "pairs", "affy"):
        raise ValueError(f"cyclic loess method must be 'fast', 'pairs' or 'affy', not {method!r}")
    x = _as_matrix(values)
    g, n = x.shape
    if method == "pairs":
        for _ in range(iterations):
            for i in range(n - 1):
                for j in range(i + 1, n):
                    m = x[:, j] - x[:, i]
                    a = 0.5 * (x[:, j] + x[:, i])
                    f = loess_fit(m, a, span=span)
                    x[:, i] = x[:, i] + f / 2
                    x[:, j] = x[:, j] - f / 2
    elif method == "fast":
        for _ in range(iterations):
            a = _row_means(x, na_rm=True)
            for i in range(n):
                f = loess_fit(x[:, i] - a, a, span=span)
                x[:, i] = x[:, i] - f
    else:
        for _ in range(iterations):
            adjustment = np.zeros((g, n))
            for i in range(n - 1):
                for j in range(i + 1, n):
                    m = x[:, j] - x[:, i]
                    a = 0.5 * (x[:, j] + x[:, i])
                    f = loess_fit(m, a, span=span)
                    adjustment[:, j] = adjustment[:, j] + f
                    adjustment[:, i] = adjustment[:, i] - f
            x = x - adjustment / n
    return x


# --------------------------------------------------------------------------------------------------
# feature filters


def feature_filter(
    values,
    max_missing: float | None = None,
    min_average: float | None = None,
    min_variance: float | None = None,
) -> tuple[np.ndarray, dict[str, int]]:
    """Features to keep, applying in order: fraction of missing values ``<= max_missing``; mean of the
    observed values ``>= min_average``; sample variance (ddof=1) of the observed values
    ``>= min_variance``.  A feature whose mean (no observed value) or variance (< 2 observed values)
    is undefined fails that filter.  ``counts`` maps the name of each filter that was given
    (``"max_missing"``, ``"min_average"``, ``"min_variance"``) to how many features it removed among
    those the previous filters kept; filters left at ``None`` are not applied and not listed."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError("expected a features x samples matrix")
    g, n = x.shape
    observed = ~np.isnan(x)
    n_obs = observed.sum(axis=1)
    keep = np.ones(g, dtype=bool)
    counts: dict[str, int] = {}
    if max_missing is not None:
        if not 0 <= max_missing <= 1:
            raise ValueError("max_missing is a fraction in [0, 1]")
        passes = (n - n_obs) / n <= max_missing
        counts["max_missing"] = int((keep & ~passes).sum())
        keep &= passes
    need_mean = min_average is not None or min_variance is not None
    if need_mean:
        filled = np.where(observed, x, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = filled.sum(axis=1) / n_obs
    if min_average is not None:
        passes = mean >= min_average  # NaN fails
        counts["min_average"] = int((keep & ~passes).sum())
        keep &= passes
    if min_variance is not None:
        dev = np.where(observed, x - mean[:, None], 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            variance = np.einsum("ij,ij->i", dev, dev) / (n_obs - 1)
        variance[n_obs < 2] = np.nan
        passes = variance >= min_variance
        counts["min_variance"] = int((keep & ~passes).sum())
        keep &= passes
    return keep, counts


__all__ = [
    "beta_to_m",
    "check_dosage",
    "cyclic_loess",
    "feature_filter",
    "log2_transform",
    "loess_fit",
    "lowess",
    "quantile_normalize",
]
