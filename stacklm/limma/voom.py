"""limma's ``voom`` (limma 3.63.2): log-CPM values with observation weights from the
mean-variance trend, one-shot and in the chunked form the workflow runs.

Ported rather than re-derived because the weights depend on R's exact smoothing: ``lowess``
(R's C ``clowess``, :func:`stacklm.rstats.lowess.lowess`) of ``sqrt(sigma)`` on the mean log count,
and ``approxfun(l, rule = 2, ties = list("ordered", mean))`` (ties in the lowess line averaged,
constant extrapolation, R's ``approx1`` interpolation formula).

voom, step by step (the R code's names):

* ``y = log2((counts + 0.5) / (lib.size + 1) * 1e6)`` (``E``; ``lib.size`` = library sizes times
  normalisation factors);
* ``fit = lmFit(y, design, block, correlation, weights)`` (:func:`stacklm.lm_fit`, with weights
  :func:`stacklm.limma.weightedfit.lm_wfit`, with a block :func:`stacklm.limma.glsseries.gls_series`);
* ``sx = Amean + mean(log2(lib.size + 1)) - log2(1e6)``, ``sy = sqrt(sigma)``, without the features
  whose counts are all zero; ``l = lowess(sx, sy, f = span)``;
* ``fitted.logcount = log2(1e-6 * 2^(coef %*% t(design)) * (lib.size + 1))``;
* ``weights = 1 / f(fitted.logcount)^4`` with ``f = approxfun(l, rule = 2, ...)``.

The trend is global, so chunked data take two passes (see :func:`voom_trend_points`):

1. per chunk, ``points = voom_trend_points(chunk_counts, design, lib_size)``: keep ``points.sx``,
   ``points.sy`` and ``points.n_with_reps``;
2. once, ``trend = voom_trend(concat(sx), concat(sy), span, n_with_reps=sum)`` (chunks in input
   order; ``trend.parameters()`` / :meth:`VoomTrend.from_parameters` carry it between jobs);
3. per chunk again, ``points = voom_trend_points(...)`` (the same numbers as pass 1) and
   ``weights = voom_weights(points.fitted_logcount, trend)``, then the weighted fit of
   ``points.E``.

Every per-feature quantity depends only on that feature's row, so the chunked weights are those of
the one-shot :func:`voom` (which runs the same three functions on one chunk), bit for bit as
long as BLAS rounds a row's products the same whatever the number of rows (OpenBLAS's matrix
products do; a one-row chunk goes through its matrix-vector product and may differ in the last
bit, which moves the weights by ~1e-16 relative).

Speed: the features x samples passes (log-CPM, fitted log counts, the approxfun, the weights) run
in place by row blocks that stay in cache, with the same operations in the same order as the
expressions above; the one-shot :func:`voom` takes each block of fitted values through the fitted
log counts, the approxfun and ``1/f^4`` before the next (:func:`_fitted_logcount`), writing the
weights over the fitted values.  The approxfun finds the knot interval from a bucket grid (one
lookup for a value in a bucket without a knot, single steps among the knots otherwise) and gathers
the per-interval differences R's ``approx1`` forms (computed once).  Only ``E`` and the weights
are features x samples arrays.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stacklm.edger.cpm import count_matrix, library_sizes, log_cpm_voom
from stacklm.io.blocks import row_blocks
from stacklm.limma.glsseries import gls_series
from stacklm.limma.lmfit import lm_fit
from stacklm.limma.loessfit import choose_lowess_span
from stacklm.limma.weightedfit import lm_wfit
from stacklm.rstats.approx import mean_ties
from stacklm.rstats.lowess import lowess
from stacklm.rstats.sums import r_mean, row_means

#: rows per block when weights are computed (about this many values per block)
VOOM_BLOCK_VALUES = 1 << 16

#: buckets of the trend's lookup grid per knot (see :meth:`VoomTrend._tables`)
_BUCKETS_PER_KNOT = 8


def _inverse_fourth_power(f: np.ndarray) -> None:
    """``f <- 1 / f^4`` in place (``np.power(f, 4)`` then ``1 / f``, as voom's ``1/f^4``)."""
    np.power(f, 4, out=f)
    np.divide(1.0, f, out=f)


@dataclass
class VoomTrend:
    """voom's mean-variance trend: the lowess line and its ``approxfun(rule = 2)``.

    ``line_x``, ``line_y`` are R's ``voom.line`` (sorted ``sx`` and the lowess values, ties
    included); ``knots_x``, ``knots_y`` the interpolation knots after ``ties = mean``.  Calling the
    object evaluates the interpolating function.  ``constant_one`` marks the no-replication case
    (limma then sets every weight to 1).
    """

    line_x: np.ndarray
    line_y: np.ndarray
    knots_x: np.ndarray
    knots_y: np.ndarray
    span: float
    constant_one: bool = False

    def __call__(self, v, out: np.ndarray | None = None) -> np.ndarray:
        """``approxfun(l, rule = 2, ties = list("ordered", mean))(v)`` (R's C ``approx1``);
        ``out``: a C-contiguous float64 array of ``v``'s shape to write to (may be ``v``)."""
        return self._apply(v, out, weights=False)

    def weights(self, v, out: np.ndarray | None = None) -> np.ndarray:
        """``1 / f(v)^4`` (voom's weights at the fitted log counts ``v``), block by block in
        cache; ``out`` as for calling the trend."""
        return self._apply(v, out, weights=True)

    def _apply(self, v, out: np.ndarray | None, weights: bool) -> np.ndarray:
        v = np.asarray(v, dtype=np.float64)
        if out is None:
            out = np.empty(v.shape)
        if self.constant_one or self.knots_x.size == 1:
            value = 1.0 if self.constant_one else self.knots_y[0]
            np.copyto(out, np.where(np.isnan(v), v, value))
            if weights:
                _inverse_fourth_power(out)
            return out
        flat = np.ascontiguousarray(v).reshape(-1)
        flat_out = out.reshape(-1)
        same = np.shares_memory(flat, flat_out)
        step = VOOM_BLOCK_VALUES
        for start in range(0, flat.size, step):
            block = flat[start : start + step]
            target = flat_out[start : start + step]
            self._evaluate(block.copy() if same else block, target)
            if weights:
                _inverse_fourth_power(target)
        return out

    def _tables(self):
        """Per knot interval i: ``x[i]``, ``x[i+1] - x[i]``, ``y[i]``, ``y[i+1] - y[i]`` (the
        differences approx1 forms, computed once); and per bucket of a uniform grid its start
        interval, as ``-1 - start`` where the bucket holds a knot."""
        if getattr(self, "_table", None) is None:
            x, y = self.knots_x, self.knots_y
            K = x.size
            self._table = (x[:-1], x[1:] - x[:-1], y[:-1], y[1:] - y[:-1])
            buckets = _BUCKETS_PER_KNOT * K
            grid = x[0] + (x[-1] - x[0]) * (np.arange(buckets + 1) / buckets)
            start = np.clip(np.searchsorted(x, grid, side="right") - 1, 0, K - 2)
            # a bucket whose range, widened by far more than the rounding of a value's bucket
            # number, holds no knot: every value given that bucket has its start interval
            pad = 1e-9 * (x[-1] - x[0])
            ends = np.append(grid[1:], np.inf)
            knots = np.searchsorted(x, ends + pad, "right") - np.searchsorted(x, grid - pad, "left")
            self._bucket_start = np.where(knots > 0, -1 - start, start).astype(np.int32)
        return self._table, self._bucket_start

    def _evaluate(self, v: np.ndarray, out: np.ndarray) -> None:
        """approx1 at the 1-D ``v`` into ``out``: ``y[i] + (y[i+1] - y[i]) * ((v - x[i]) /
        (x[i+1] - x[i]))`` on the interval i that approx1's bisection finds (the largest
        i <= K - 2 with ``x[i] <= v``; at ``v = x[i]`` the formula gives ``y[i]`` exactly, as
        approx1 returns), the end values outside (rule 2: the last knot itself is the interval's
        right end, ``y[K-1]``), NaN for NaN.

        The interval: a uniform bucket grid over the knots gives it for the values in a bucket
        without a knot, a start corrected by single steps for the others (binary searches over
        tens of thousands of knots cost ~80 ns a value in cache misses; this costs a few)."""
        x = self.knots_x
        K = x.size
        lo_x, hi_x = x[0], x[-1]
        table, bucket_start = self._tables()
        inside = v >= lo_x
        inside &= v < hi_x  # False for NaN; x[K-1] itself is fixed below with the outside values
        vv = np.where(inside, v, lo_x)  # NaN and outside: anything valid, replaced below
        b = vv - lo_x
        b *= (K * _BUCKETS_PER_KNOT) / (hi_x - lo_x)
        i = np.take(bucket_start, b.astype(np.intp))
        sub = np.flatnonzero(i < 0)  # buckets with a knot: values to place among their knots
        if sub.size:
            si = -1 - i[sub]
            sv = vv[sub]
            down = np.flatnonzero((x[si] > sv) & (si > 0))
            while down.size:  # the bucket start is past v (rounding of the bucket number)
                si[down] -= 1
                down = down[(x[si[down]] > sv[down]) & (si[down] > 0)]
            up = np.flatnonzero((x[si + 1] <= sv) & (si < K - 2))
            while up.size:  # knots between the bucket start and v
                si[up] += 1
                up = up[(x[si[up] + 1] <= sv[up]) & (si[up] < K - 2)]
            i[sub] = si
        xi = np.take(table[0], i)
        np.subtract(vv, xi, out=out)
        out /= np.take(table[1], i)
        out *= np.take(table[3], i)
        out += np.take(table[2], i)
        outside = np.flatnonzero(~inside)
        if outside.size:
            w = v[outside]
            y = self.knots_y
            out[outside] = np.where(w >= hi_x, y[-1], np.where(w < lo_x, y[0], w))

    def parameters(self) -> dict:
        """The trend as plain lists (JSON-able; floats round-trip exactly through ``repr``)."""
        return {
            "line_x": self.line_x.tolist(),
            "line_y": self.line_y.tolist(),
            "knots_x": self.knots_x.tolist(),
            "knots_y": self.knots_y.tolist(),
            "span": self.span,
            "constant_one": self.constant_one,
        }

    @classmethod
    def from_parameters(cls, params: dict) -> VoomTrend:
        return cls(
            line_x=np.asarray(params["line_x"], dtype=np.float64),
            line_y=np.asarray(params["line_y"], dtype=np.float64),
            knots_x=np.asarray(params["knots_x"], dtype=np.float64),
            knots_y=np.asarray(params["knots_y"], dtype=np.float64),
            span=float(params["span"]),
            constant_one=bool(params.get("constant_one", False)),
        )


@dataclass
class VoomPoints:
    """One chunk's share of voom: ``E`` (log-CPM), the trend points ``sx``, ``sy`` (features with
    all counts zero left out, as voom; ``kept`` marks the rows they come from), the fitted log
    counts (features x samples) and how many features have residual df > 0."""

    E: np.ndarray
    sx: np.ndarray | None
    sy: np.ndarray | None
    kept: np.ndarray
    fitted_logcount: np.ndarray | None
    n_with_reps: int
    amean: np.ndarray | None = None


@dataclass
class VoomResult:
    """limma's voom ``EList``: ``E``, ``weights``, the design and effective library sizes, the span
    used, and (``save_plot``) the trend points ``sx``, ``sy`` (``voom.xy``) with the lowess line
    ``trend.line_x``, ``trend.line_y`` (``voom.line``); ``amean`` is ``rowMeans(E)``, which
    ``lm_wfit(v.E, design, v.weights, amean=v.amean)`` can take instead of computing it again."""

    E: np.ndarray
    weights: np.ndarray
    design: np.ndarray
    lib_size: np.ndarray
    span: float
    trend: VoomTrend
    sx: np.ndarray | None = None
    sy: np.ndarray | None = None
    amean: np.ndarray | None = None


def _counts_matrix(counts) -> np.ndarray:
    y = count_matrix(counts)
    smallest = y.min() if y.size else 0.0  # NaN if any count is NaN: one pass for both checks
    if np.isnan(smallest):
        raise ValueError("NA counts not allowed")
    if smallest < 0:
        raise ValueError("Negative counts not allowed")
    return y


def _design_matrix(design, n: int) -> np.ndarray:
    if design is None:
        return np.ones((n, 1))
    if isinstance(design, pd.DataFrame):
        design = design.to_numpy(dtype=np.float64)
    X = np.asarray(design, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if X.shape[0] != n:
        raise ValueError(f"design has {X.shape[0]} rows for {n} samples")
    return X


def effective_lib_size(counts, lib_size=None, norm_factors=None) -> np.ndarray:
    """``lib.size * norm.factors`` as voom takes it from a DGEList (column sums by default)."""
    y = counts if isinstance(counts, np.ndarray) else _counts_matrix(counts)
    lib = library_sizes(y, lib_size)
    if norm_factors is not None:
        nf = np.asarray(norm_factors, dtype=np.float64).ravel()
        if nf.size != lib.size:
            raise ValueError(f"norm_factors has {nf.size} values for {lib.size} samples")
        lib = lib * nf
    return lib


def _fit(E, X, weights, block, correlation):
    if block is not None:
        return gls_series(E, X, block=block, correlation=correlation, weights=weights)
    if weights is None:
        return lm_fit(E, X)
    return lm_wfit(E, X, weights)


def voom_trend_points(
    counts,
    design=None,
    lib_size=None,
    norm_factors=None,
    weights=None,
    block=None,
    correlation=None,
    trend_points: bool = True,
    fitted: bool = True,
) -> VoomPoints:
    """voom for one chunk of features, up to the trend: log-CPM, the fit, the trend points and the
    fitted log counts.  A chunk pass that needs only one of them leaves the other out:
    ``trend_points=False`` (the weights pass: ``sx`` and ``sy`` are None), ``fitted=False`` (the
    trend pass: ``fitted_logcount`` is None); the rest is the same either way.

    ``lib_size`` (and ``norm_factors``) must be the global, all-feature ones (the library sizes of
    the whole analysis), not the chunk's column sums.  ``weights`` are prior weights passed to the
    fit (voomWithQualityWeights passes sample weights).  With ``block``, the fit is limma's
    ``gls.series`` (:func:`stacklm.limma.glsseries.gls_series`); pass the analysis' ``correlation``
    (without one, gls.series estimates a consensus from the rows it is given: in a chunk, the
    chunk's)."""
    y = _counts_matrix(counts)
    X = _design_matrix(design, y.shape[1])
    lib = effective_lib_size(y, lib_size, norm_factors)
    points = _trend_points(y, X, lib, weights, block, correlation, trend_points, fitted)
    if fitted:
        _fitted_logcount(points.fitted_logcount, lib)  # in place
    return points


def _trend_points(
    y,
    X,
    lib,
    weights,
    block,
    correlation,
    trend_points: bool = True,
    fitted: bool = True,
) -> VoomPoints:
    """:func:`voom_trend_points` on a checked count matrix ``y``, design ``X`` and effective
    library sizes ``lib``, except that ``fitted_logcount`` holds the fitted values
    ``coef %*% t(design)``: :func:`_fitted_logcount` turns them into log counts (and weights)."""
    E = log_cpm_voom(y, lib)
    fit = _fit(E, X, weights, block, correlation)
    n_with_reps = int(np.sum(fit.df_residual > 0))
    kept = y.sum(axis=1) != 0
    sx = sy = amean = None
    if trend_points:
        amean = row_means(E, na_rm=True)  # lmFit's Amean (rowMeans), in a row-local order
        sx = (amean + r_mean(np.log2(lib + 1)) - math.log2(1e6))[kept]
        sy = np.sqrt(fit.sigma)[kept]
    return VoomPoints(
        E=E,
        sx=sx,
        sy=sy,
        kept=kept,
        fitted_logcount=fit.coefficients @ X.T if fitted else None,
        n_with_reps=n_with_reps,
        amean=amean,
    )


def _fitted_logcount(
    fitted: np.ndarray, lib: np.ndarray, trend: VoomTrend | None = None
) -> np.ndarray:
    """``log2(1e-6 * 2^fitted * (lib.size + 1))`` (voom's ``fitted.logcount``) from the fitted
    values ``coef %*% t(design)``, in place by row blocks (the same operations; the products
    commute exactly); with ``trend``, then voom's weights ``1 / f(fitted.logcount)^4``, each block
    in cache from the first operation to the last."""
    lib1 = lib + 1
    for rows in row_blocks(fitted.shape[0], fitted.shape[1], VOOM_BLOCK_VALUES):
        block = fitted[rows]
        np.exp2(block, out=block)
        block *= lib1
        block *= 1e-6
        np.log2(block, out=block)
        if trend is not None:
            trend.weights(block, out=block)
    return fitted


def voom_trend(sx, sy, span: float = 0.5, n_with_reps: int | None = None) -> VoomTrend:
    """voom's global step: ``lowess(sx, sy, f = span)`` and its ``approxfun``.

    ``sx``, ``sy`` are the trend points of all features (chunks concatenated in input order).
    ``n_with_reps`` (features with residual df > 0, summed over chunks) below 2 gives limma's
    no-replication case: a warning and weights of 1."""
    sx = np.asarray(sx, dtype=np.float64)
    sy = np.asarray(sy, dtype=np.float64)
    if n_with_reps is None:
        n_with_reps = int(np.sum(np.isfinite(sy)))
    if n_with_reps < 2:
        if n_with_reps == 0:
            warnings.warn(
                "The experimental design has no replication. Setting weights to 1.", stacklevel=2
            )
        else:
            warnings.warn("Only one gene with any replication. Setting weights to 1.", stacklevel=2)
        empty = np.empty(0)
        return VoomTrend(empty, empty, empty, empty, float(span), constant_one=True)
    order = np.argsort(sx, kind="stable")  # R's order(): stable
    x = sx[order]
    yv = sy[order]
    delta = 0.01 * (x[-1] - x[0])
    line_y = lowess(x, yv, f=span, iterations=3, delta=delta)
    kx, ky = mean_ties(x, line_y)  # ties = list("ordered", mean): x is sorted
    return VoomTrend(line_x=x, line_y=line_y, knots_x=kx, knots_y=ky, span=float(span))


def voom_weights(fitted_logcount, trend: VoomTrend, overwrite: bool = False) -> np.ndarray:
    """``1 / f(fitted.logcount)^4``: voom's observation weights from the global trend.

    ``overwrite``: compute the weights in the memory of ``fitted_logcount`` (a float64 array the
    caller no longer needs), saving a features x samples array."""
    flc = np.asarray(fitted_logcount, dtype=np.float64)
    if overwrite and flc.flags.c_contiguous and flc.flags.writeable:
        return trend.weights(flc, out=flc)
    return trend.weights(flc)


def voom(
    counts,
    design=None,
    lib_size=None,
    norm_factors=None,
    span: float = 0.5,
    adaptive_span: bool = False,
    block=None,
    correlation=None,
    weights=None,
    save_plot: bool = True,
) -> VoomResult:
    """limma's ``voom(counts, design, lib.size, span = span, adaptive.span, block, correlation,
    weights)`` for a count matrix (features x samples).

    ``lib_size`` defaults to the column sums; with ``norm_factors`` the effective library sizes are
    ``lib_size * norm_factors`` (what voom takes from a DGEList after ``calcNormFactors``).
    ``design`` defaults to an intercept.  ``adaptive_span`` chooses the span from the number of
    features (``chooseLowessSpan``).  Returns E, weights, the span and the trend (points and
    lowess line with ``save_plot``).  The same numbers come from the chunked functions
    :func:`voom_trend_points`, :func:`voom_trend` and :func:`voom_weights` (module docstring).
    """
    y = _counts_matrix(counts)
    if y.shape[0] < 2:
        raise ValueError("Need at least two genes to fit a mean-variance trend")
    X = _design_matrix(design, y.shape[1])
    lib = effective_lib_size(y, lib_size, norm_factors)
    if adaptive_span:
        span = choose_lowess_span(y.shape[0], small_n=50, min_span=0.3, power=1 / 3)
    points = _trend_points(y, X, lib, weights, block, correlation)
    trend = voom_trend(points.sx, points.sy, span, n_with_reps=points.n_with_reps)
    w = _fitted_logcount(points.fitted_logcount, lib, trend)
    return VoomResult(
        E=points.E,
        weights=w,
        design=X,
        lib_size=lib,
        span=float(span),
        trend=trend,
        sx=points.sx if save_plot else None,
        sy=points.sy if save_plot else None,
        amean=points.amean,
    )
