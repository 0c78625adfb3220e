"""R's ``lowess`` (a port of its C ``clowess``): no library reproduces R's delta skipping and
robustness iterations, which limma's ``loessFit`` and voom depend on."""

from __future__ import annotations

import math

import numpy as np

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
