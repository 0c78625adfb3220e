"""limma's ``weightedLowess`` (C ``weighted_lowess`` in limma's src/weighted_lowess.c, Aaron Lun)
and the weighted branch of ``loessFit`` that calls it.

Ported because no library implements this variant of lowess: prior weights act as frequency weights
in the span (a window grows, one nearest point at a time, until it holds ``span`` of the total
weight) and in the local linear fits; the fit is computed at ~``npts`` seed points and linearly
interpolated in between.  limma 3.63.2's ``fitFDistUnequalDF1`` uses it for ``trend=TRUE``.

The C code's per-point loops are vectorised per seed point (seeds are about ``npts``, not one per
feature): the window of a seed is found by merging the distances to its left and right neighbours
(the nearer first, right on ties, as the C loop) and summing weights sequentially in that order, so
the windows are the C code's exactly; the sums of the local fits are sequential as in C too.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from stacklm.limma.loessfit import loess_fit

THRESHOLD = 0.0000001


def _seq_sum(a: np.ndarray, out: np.ndarray | None = None) -> float:
    """Left-to-right double sum, as a C loop ``s += a[i]`` (np.sum is pairwise); ``out`` is an
    optional scratch buffer of a's size."""
    if a.size == 0:
        return 0.0
    return float(np.cumsum(a, out=out)[-1])


def _find_seeds(x: np.ndarray, delta: float) -> np.ndarray:
    """C ``find_seeds``: 0, then each point more than ``delta`` beyond the previous seed, then n-1."""
    n = x.size
    seeds = [0]
    last = 0
    hi = n - 1  # candidates are 1 .. n-2
    while True:
        xl = x[last]
        # x sorted, so fl(x[pt] - x[last]) is non-decreasing in pt: first pt with a gap > delta
        pt = bisect.bisect_right(range(hi), delta, lo=last + 1, hi=hi, key=lambda i: x[i] - xl)
        if pt >= hi:
            break
        seeds.append(pt)
        last = pt
    seeds.append(n - 1)
    return np.asarray(seeds, dtype=np.intp)


def _window_guess(seeds, x, w, spanweight):
    """Approximate neighbour counts (left, right) for each seed's window, from float prefix sums of
    the weights and a bisection on the half-width (vectorised over seeds); refined exactly later."""
    cw = np.concatenate(([0.0], np.cumsum(w)))
    xc = x[seeds]
    lo_d = np.zeros(seeds.size)
    hi_d = np.full(seeds.size, x[-1] - x[0])
    for _ in range(60):
        mid = (lo_d + hi_d) / 2
        lo = np.searchsorted(x, xc - mid, side="left")
        hi = np.searchsorted(x, xc + mid, side="right")
        enough = cw[hi] - cw[lo] >= spanweight
        hi_d = np.where(enough, mid, hi_d)
        lo_d = np.where(enough, lo_d, mid)
    lo = np.searchsorted(x, xc - hi_d, side="left")
    hi = np.searchsorted(x, xc + hi_d, side="right")
    return seeds - lo, hi - 1 - seeds


def _find_limits(seeds, x, w, spanweight):
    """C ``find_limits``: for each seed the window [start, end] (extended to ties) and the largest
    distance reached while growing it."""
    n = x.size
    start = np.empty(seeds.size, dtype=np.intp)
    end = np.empty(seeds.size, dtype=np.intp)
    dist = np.empty(seeds.size)
    gl, gr = _window_guess(seeds, x, w, spanweight)
    for s, c in enumerate(seeds):
        c = int(c)
        kl = int(gl[s] * 1.01) + 8
        kr = int(gr[s] * 1.01) + 8
        while True:
            kl = min(kl, c)
            kr = min(kr, n - 1 - c)
            xc = x[c]
            rd = x[c + 1 : c + 1 + kr] - xc
            ld = xc - x[c - kl : c][::-1]  # to c-1, c-2, ...
            d = np.concatenate((rd, ld))
            side = np.concatenate((np.zeros(kr, dtype=np.int8), np.ones(kl, dtype=np.int8)))
            wt = np.concatenate((w[c + 1 : c + 1 + kr], w[c - kl : c][::-1]))
            # merge order of the C loop: nearer first, right on ties, inner points first
            order = np.argsort(d, kind="stable")
            d, side, wt = d[order], side[order], wt[order]
            # the merged candidates are the true order up to the first point left out
            bound_d, bound_s = np.inf, 2
            if kr < n - 1 - c:
                bound_d, bound_s = x[c + kr + 1] - xc, 0
            if kl < c:
                bl = xc - x[c - kl - 1]
                if bl < bound_d:
                    bound_d, bound_s = bl, 1
            valid = (d < bound_d) | ((d == bound_d) & (side <= bound_s))
            m = int(np.count_nonzero(valid))
            curw = np.cumsum(np.concatenate(([w[c]], wt[:m])))
            reached = np.flatnonzero(curw >= spanweight)
            if reached.size:
                steps = int(reached[0])
                break
            if kl == c and kr == n - 1 - c:
                steps = m  # the window holds every point
                break
            kl = 2 * kl + 16
            kr = 2 * kr + 16
        taken = side[:steps]
        n_left = int(np.count_nonzero(taken))
        left = c - n_left
        right = c + (steps - n_left)
        dist[s] = float(d[steps - 1]) if steps else 0.0
        # extending to ties
        start[s] = np.searchsorted(x, x[left], side="left")
        end[s] = np.searchsorted(x, x[right], side="right") - 1
    return start, end, dist


def _lowess_fit(x, y, w, rw, curpt, left, right, dist, scratch, unit_rw=False) -> float:
    """C ``lowess_fit``: local linear fit at x[curpt] with tricube x prior x robustness weights.
    ``scratch`` holds three buffers of x's size (no allocation per seed); ``unit_rw`` says that
    the robustness weights are all 1 (multiplying by them is then skipped: the same numbers)."""
    m = right - left + 1
    window = slice(left, right + 1)
    xs = x[window]
    ys = y[window]
    work = scratch[0][:m]
    tmp = scratch[1][:m]
    acc = scratch[2][:m]
    if dist < THRESHOLD:
        if unit_rw:
            work[:] = w[window]
        else:
            np.multiply(w[window], rw[window], out=work)
        np.multiply(ys, work, out=tmp)
        return _seq_sum(tmp, acc) / _seq_sum(work, acc)
    np.subtract(x[curpt], xs, out=tmp)
    np.abs(tmp, out=tmp)
    tmp /= dist
    np.power(tmp, 3.0, out=tmp)
    np.subtract(1, tmp, out=tmp)
    np.power(tmp, 3.0, out=work)
    work *= w[window]
    if not unit_rw:
        work *= rw[window]
    allweight = _seq_sum(work, acc)
    np.multiply(work, xs, out=tmp)
    xmean = _seq_sum(tmp, acc) / allweight
    np.multiply(work, ys, out=tmp)
    ymean = _seq_sum(tmp, acc) / allweight
    temp = np.subtract(xs, xmean, out=tmp)  # x - xmean
    np.multiply(temp, temp, out=acc)
    acc *= work
    var = _seq_sum(acc, acc)
    np.subtract(ys, ymean, out=acc)
    acc *= temp
    acc *= work
    covar = _seq_sum(acc, acc)
    if var < THRESHOLD:
        return ymean
    slope = covar / var
    intercept = ymean - slope * xmean
    return slope * x[curpt] + intercept


def _weighted_lowess_sorted(x, y, w, span, iterations, delta):
    """C ``weighted_lowess`` on x sorted increasingly: fitted values and robustness weights."""
    npts = x.size
    if npts < 2:
        raise ValueError("need at least two points")
    if iterations <= 0:
        raise ValueError("number of robustness iterations should be positive")
    totalweight = _seq_sum(w)
    spanweight = totalweight * span
    subrange = (x[npts - 1] - x[0]) / npts
    seeds = _find_seeds(x, delta)
    fstart, fend, fdist = _find_limits(seeds, x, w, spanweight)
    fitted = np.empty(npts)
    rob = np.ones(npts)
    # interpolation segments between consecutive seeds
    gaps = np.flatnonzero(np.diff(seeds) > 1)
    scratch = np.empty((3, npts))
    for it in range(iterations):
        for s, pt in enumerate(seeds):
            fitted[pt] = _lowess_fit(
                x, y, w, rob, pt, fstart[s], fend[s], fdist[s], scratch, unit_rw=it == 0
            )
        for g in gaps:
            last_pt, pt = int(seeds[g]), int(seeds[g + 1])
            sub = slice(last_pt + 1, pt)
            current = x[pt] - x[last_pt]
            if current > THRESHOLD * subrange:
                slope = (fitted[pt] - fitted[last_pt]) / current
                intercept = fitted[pt] - slope * x[pt]
                fitted[sub] = slope * x[sub] + intercept
            else:
                fitted[sub] = 0.5 * (fitted[pt] + fitted[last_pt])
        # weighted MAD of the residuals
        rsd = np.abs(y - fitted)
        resid_scale = _seq_sum(rsd) / npts
        ror = np.argsort(rsd, kind="stable")
        rsd_sorted = rsd[ror]
        current_w = np.cumsum(w[ror])
        halfweight = totalweight / 2
        cmad = 0.0
        hit = np.flatnonzero(current_w >= halfweight)
        if hit.size:
            k = int(hit[0])
            if current_w[k] == halfweight:
                cmad = 3 * (rsd_sorted[k] + rsd_sorted[k + 1])
            else:
                cmad = 6 * rsd_sorted[k]
        if cmad <= THRESHOLD * resid_scale:
            break
        rob = np.where(rsd < cmad, np.power(1 - np.power(rsd / cmad, 2.0), 2.0), 0.0)
    return fitted, rob


@dataclass
class WeightedLowessFit:
    fitted: np.ndarray
    residuals: np.ndarray
    weights: np.ndarray  # robustness weights of the last iteration
    delta: float


def weighted_lowess(
    x,
    y,
    weights=None,
    delta: float | None = None,
    npts: int = 200,
    span: float = 0.3,
    iterations: int = 4,
) -> WeightedLowessFit:
    """limma ``weightedLowess(x, y, weights, delta, npts, span, iterations, output.style="loess")``:
    fitted values, residuals and robustness weights in the input order.

    ``delta`` (points closer than this to a seed are interpolated) defaults to limma's choice: the
    spacing that gives ``npts`` seeds over the range of x once the largest gaps are set aside.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.size != y.size:
        raise ValueError("x and y should have same length")
    w = np.ones(y.size) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.size != y.size:
        raise ValueError("weights should have same length as x and y")
    iterations = int(iterations)
    o = np.argsort(x, kind="stable")
    xs = x[o]
    if delta is None:
        npts = int(npts + 0.5)
        if npts < 1:
            raise ValueError("number of points should be a positive integer")
        if npts >= xs.size:
            delta = 0.0
        else:
            dx = np.sort(np.diff(xs))
            # R's cumsum accumulates in long double
            cumrange = np.cumsum(dx.astype(np.longdouble)).astype(np.float64)
            numclusters = np.arange(npts)
            delta = float(np.min(cumrange[dx.size - numclusters - 1] / (npts - numclusters)))
    delta = float(delta)
    fit_sorted, rob_sorted = _weighted_lowess_sorted(xs, y[o], w[o], float(span), iterations, delta)
    fitted = np.empty(y.size)
    fitted[o] = fit_sorted
    rob = np.empty(y.size)
    rob[o] = rob_sorted
    return WeightedLowessFit(fitted, y - fitted, rob, delta)


def weighted_loess_fit(
    y,
    x,
    weights=None,
    span: float = 0.3,
    iterations: int = 4,
    min_weight: float = 1e-5,
    max_weight: float = 1e5,
    equal_weights_as_null: bool = True,
) -> np.ndarray:
    """Fitted values of limma ``loessFit(y, x, weights, span, iterations, min.weight, max.weight,
    equal.weights.as.null, method="weightedLowess")`` (NaN where x or y is not finite).

    Without weights (or all weights equal) this is R's ``lowess`` through
    :func:`stacklm.limma.loessfit.loess_fit`; with fewer than ``4 + 1/span`` observations a
    weighted straight line (``lm.wfit``); otherwise :func:`weighted_lowess` with ``npts = 200``.
    """
    y = np.asarray(y, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    n = y.size
    if x.size != n:
        raise ValueError("y and x have different lengths")
    fitted = np.full(n, np.nan)
    obs = np.isfinite(y) & np.isfinite(x)
    xobs, yobs = x[obs], y[obs]
    nobs = xobs.size
    if nobs == 0:
        return fitted
    if span < 1 / nobs:
        fitted[obs] = yobs
        return fitted
    min_weight = max(min_weight, 0.0)
    wobs = None
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        if weights.size != n:
            raise ValueError("y and weights have different lengths")
        wobs = weights[obs].copy()
        wobs[np.isnan(wobs)] = 0.0
        wobs = np.minimum(np.maximum(wobs, min_weight), max_weight)
        if equal_weights_as_null and wobs.max() - wobs.min() < 1e-15:
            wobs = None
    if wobs is None:
        return loess_fit(y, x, span=span, iterations=iterations)
    nwobs = nobs if min_weight > 0 else int(np.count_nonzero(wobs > 0))
    if nwobs < 4 + 1 / span:
        if nwobs == 1:
            fitted[obs] = yobs[wobs > 0][0]
        else:
            pos = wobs > 0
            sw = np.sqrt(wobs[pos])
            design = np.column_stack((np.ones(nobs), xobs))
            coef = np.linalg.lstsq(design[pos] * sw[:, None], yobs[pos] * sw, rcond=None)[0]
            fitted[obs] = design @ coef
        return fitted
    fit = weighted_lowess(xobs, yobs, wobs, span=span, iterations=iterations, npts=200)
    fitted[obs] = fit.fitted
    return fitted
