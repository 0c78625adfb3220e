"""edgeR's ``calcNormFactors`` (``calcNormFactors.default``, edgeR 3.40.2): TMM, TMMwsp,
upper quartile, none.

A port rather than a re-derivation: the factors depend on discrete choices (reference column,
which genes the trims keep, ties in the ranks and orders of log ratios) that only the same
arithmetic reproduces.

Speed: samples are copied in blocks to samples x genes rows (contiguous) and computed a few rows
at a time (sized to stay in cache), vectorised over genes and the block's samples.  The rank
trims of TMM need no sort: the kept set is a window of values, whose ends are order statistics
found by selection (``np.partition``, O(n)) and whose end tie groups get their average ranks from
two counts (:func:`_rank_window`).  The ranks are those of the C library's log2 (R's), which
numpy's SIMD log2 can differ from by a last bit, creating or breaking ties: only the values next
to the two window ends can be affected, and those get the C library's logarithms
(:func:`_exact_rank_window`).  TMMwsp's stable orders are windows of sorted values likewise.  Sums
are R's long double sums of the kept genes in gene order.
"""

from __future__ import annotations

import math

import numpy as np

from ..io.blocks import rows_per_block
from ..rstats.sums import col_sums, r_mean, r_sum
from ._rmath import _c_log2, log2_libm, log2_libm_rows
from .cpm import count_matrix

METHODS = ("TMM", "TMMwsp", "upperquartile", "none")

#: samples per block copied to samples x features (about this many values); each block is then
#: computed in steps of about ``COMPUTE_VALUES`` values (a few samples that stay in cache)
SAMPLE_BLOCK_VALUES = 1 << 20
COMPUTE_VALUES = 1 << 16


def _sample_blocks(x: np.ndarray):
    """The columns of ``x`` in blocks of samples, each as a C-contiguous samples x features
    array (about ``SAMPLE_BLOCK_VALUES`` values), with its column slice.  Copied in tiles of
    features (a strided copy of whole columns misses the cache on every value)."""
    g, n = x.shape
    step = rows_per_block(g, SAMPLE_BLOCK_VALUES)
    for start in range(0, n, step):
        cols = slice(start, min(start + step, n))
        block = np.empty((cols.stop - cols.start, g))
        tile = rows_per_block(block.shape[0], 1 << 15)
        for i in range(0, g, tile):
            block[:, i : i + tile] = x[i : i + tile, cols].T
        yield cols, block


def _factor_quantile(x: np.ndarray, lib_size: np.ndarray, p: float) -> np.ndarray:
    """edgeR's ``.calcFactorQuantile``: the p-quantile of each column over its library size.

    R's type-7 quantile (:func:`stacklm.rstats.basic.quantile7`) of each column: the ``lo``-th
    smallest value by a selection (``np.partition`` with one kth, numpy's SIMD quickselect, is
    faster than a sort) and, when the index is fractional, the next one (the smallest above)."""
    n = x.shape[0]
    index = 1 + (n - 1) * p
    lo = math.floor(index)
    hi = math.ceil(index)
    h = index - lo
    f = np.empty(x.shape[1])
    for cols, xb in _sample_blocks(x):
        for r in range(xb.shape[0]):  # a loop over samples
            part = np.partition(xb[r], lo - 1)
            q = part[lo - 1]
            if index > lo:
                upper = part[hi - 1 :].min()
                if upper != q:
                    q = (1 - h) * q + h * upper
            f[cols.start + r] = q
    return f / lib_size


#: half-width (relative to max(1, |bound|)) of the values around a trim boundary that get the C
#: library's logarithms: numpy's and the C library's log2 differ by at most an ulp (|log2| < 1075,
#: so at most 2^-42), and so do values whose C-library logarithms tie
_BOUNDARY_RELATIVE = 1e-11


def _order_statistics(values: np.ndarray, lo: int, hi: int) -> tuple[float, float]:
    """The ``lo``-th and ``hi``-th smallest of ``values`` (1-based, ``lo <= hi``), by two
    one-kth partitions (numpy's SIMD quickselect; a partition with two kth is not)."""
    part = np.partition(values, lo - 1)
    q_lo = float(part[lo - 1])
    q_hi = q_lo if hi == lo else float(np.partition(part[lo:], hi - lo - 1)[hi - lo - 1])
    return q_lo, q_hi


def _rank_window(values: np.ndarray, n: int, lo: int, hi: int) -> np.ndarray:
    """Which of one sample's ``values`` have an average rank (R's ``rank``, ties averaged) within
    ``[lo, hi]`` among its ``n`` ranked values (the others are ``+inf``, never inside).

    Average ranks increase with the value, so the window is the values between the ``lo``-th and
    the ``hi``-th smallest ones, each end's tie group included when its average rank is inside:
    two selections and a few counts instead of a sort (counts are integers: ties are common).
    :func:`_exact_rank_window` with the values taken as they are."""
    return _exact_rank_window(values, n, lo, hi, lambda idx: values[idx])


def _exact_rank_window(values: np.ndarray, n: int, lo: int, hi: int, exact) -> np.ndarray:
    """:func:`_rank_window` for logarithms ranked as R ranks them, by the C library's log2.

    ``values`` are the logarithms by numpy (``+inf`` where not ranked), which may differ from the
    C library's in the last bit (SIMD kernels) and so create or break ties; ``exact(idx)`` gives
    the C library's values at positions ``idx``.  Only the ties at the two trim boundaries decide
    which values are inside, so only the values near the ``lo``-th and ``hi``-th smallest (within
    ``_BOUNDARY_RELATIVE``) get their exact values, written into ``values``; every other value is
    farther from both bounds than any rounding difference."""
    lo, hi = max(lo, 1), min(hi, n)
    if lo > hi:
        return np.zeros(values.shape, dtype=bool)
    bounds = []
    for k, q in zip((lo, hi), _order_statistics(values, lo, hi), strict=True):
        delta = _BOUNDARY_RELATIVE * max(1.0, abs(q))
        near = values >= q - delta
        below = values.size - int(np.count_nonzero(near))  # well below the bound
        near &= values <= q + delta
        idx = np.flatnonzero(near)
        ex = exact(idx)
        values[idx] = ex
        ex.sort()
        level = ex[k - 1 - below]  # the k-th smallest value, as R's sort has it
        twice = 2 * (below + int(np.count_nonzero(ex < level)))
        twice += int(np.count_nonzero(ex == level)) + 1
        bounds.append((level, twice))
    (lv_lo, tw_lo), (lv_hi, tw_hi) = bounds
    lower = lv_lo if tw_lo >= 2 * lo else np.nextafter(lv_lo, np.inf)
    upper = lv_hi if tw_hi <= 2 * hi else np.nextafter(lv_hi, -np.inf)
    window = values >= lower
    window &= values <= upper
    return window


def _factor_tmm(
    xb: np.ndarray,
    lib_b: np.ndarray,
    ref: dict,
    logratio_trim: float,
    sum_trim: float,
    do_weighting: bool,
    a_cutoff: float,
) -> np.ndarray:
    """edgeR's ``.calcFactorTMM`` for a block of samples (the rows of ``xb``) against the reference
    column (``ref``: its counts, proportions, logs and variance terms, see :func:`_reference`).

    Per sample as edgeR: ``logR = log2(obs.p / ref.p)``, ``absE = (log2(obs.p) + log2(ref.p)) / 2``,
    ``v``; the genes with finite ``logR`` and ``absE`` (``absE > Acutoff``) are trimmed by their
    ranks of ``logR`` and of ``absE``, and the factor is ``2^`` the precision-weighted mean of the
    kept ``logR``.  The trims are rank windows found by selection, with the ties at their ends as
    the C library's log2 makes them (:func:`_exact_rank_window`).  Sums are R's long double sums of
    each sample's kept genes in gene order."""
    n_obs = lib_b[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        obs_p = xb / n_obs
        ratios = obs_p / ref["p"]
        log_r = np.log2(ratios)
        abs_e = np.log2(obs_p)
        abs_e += ref["log2_p"]
        abs_e /= 2
        fin = abs_e > a_cutoff
        fin &= abs_e < np.inf  # with the above: finite
        fin &= np.isfinite(log_r)
    n = fin.sum(axis=1)
    not_fin = ~fin
    log_r[not_fin] = np.inf
    abs_e[not_fin] = np.inf
    log2_ref = ref["log2_p"]
    out = np.ones(xb.shape[0])
    for r in range(xb.shape[0]):  # a loop over the block's samples: their trims and R's sums
        nr = int(n[r])
        if nr == 0:
            continue
        ratio, p_r = ratios[r], obs_p[r]
        lr_row = log_r[r]
        with np.errstate(invalid="ignore"):
            small = float(np.min(np.where(fin[r], ratio, np.inf)))
            big = float(np.max(np.where(fin[r], ratio, 0.0)))
        if max(abs(math.log2(small)), abs(math.log2(big))) < 1e-6:
            continue  # edgeR: max(abs(logR)) < 1e-6 gives 1
        lo_l = math.floor(nr * logratio_trim) + 1
        lo_s = math.floor(nr * sum_trim) + 1
        keep = _exact_rank_window(
            lr_row, nr, lo_l, nr + 1 - lo_l, lambda idx, ratio=ratio: _c_log2(ratio[idx])
        )
        keep &= _exact_rank_window(
            abs_e[r],
            nr,
            lo_s,
            nr + 1 - lo_s,
            lambda idx, p_r=p_r: (_c_log2(p_r[idx]) + log2_ref[idx]) / 2,
        )
        k = np.flatnonzero(keep)
        lr = lr_row[k]
        if do_weighting:
            obs = xb[r, k]
            with np.errstate(divide="ignore", invalid="ignore"):
                vk = (lib_b[r] - obs) / lib_b[r] / obs + ref["v"][k]
                f = r_sum(lr / vk) / r_sum(1 / vk)
        else:
            f = r_mean(lr)
        if math.isnan(f):
            f = 0.0
        out[r] = 2.0**f
    return out


def _stable_position_window(
    key: np.ndarray, sorted_key: np.ndarray, lo: int, hi: int, tie_key: np.ndarray | None = None
) -> np.ndarray:
    """Which of one sample's values sit at positions ``lo - 1`` .. ``hi - 1`` (0-based) of R's
    ``order(key, tie_key)`` (stable: remaining ties by position).

    ``sorted_key`` is ``key`` sorted.  The values strictly between the two end values are inside;
    the tie group of each end value is ordered by ``tie_key`` (stably) and cut at the window."""
    q_lo, q_hi = sorted_key[lo - 1], sorted_key[hi - 1]
    keep = (key > q_lo) & (key < q_hi)
    for q in {q_lo, q_hi}:
        group = np.flatnonzero(key == q)  # in position order
        if tie_key is not None:
            group = group[np.argsort(tie_key[group], kind="stable")]
        first = np.searchsorted(sorted_key, q, "left")
        pos = first + np.arange(group.size)
        keep[group] = (pos >= lo - 1) & (pos <= hi - 1)
    return keep


def _factor_tmmwsp(
    xb: np.ndarray,
    lib_b: np.ndarray,
    ref: dict,
    logratio_trim: float,
    sum_trim: float,
    do_weighting: bool,
    a_cutoff: float,
) -> np.ndarray:
    """edgeR's ``.calcFactorTMMwsp`` (TMM with singleton pairing) for a block of samples (the rows
    of ``xb``).

    Per sample as edgeR: genes with both counts zero dropped, the singletons (one count zero)
    paired by decreasing size and put after the others, ``M``, ``A``, ``M.shrunk``; trimmed by
    positions in ``order(M, M.shrunk)`` and ``order(A)`` (:func:`_stable_position_window`).  Each
    sample's genes fill the start of its row; the rest of the row is padding (count ``inf``
    against 0: non-finite logarithms, sorted last).  A sample with a non-finite ``M`` or ``A``
    is ordered by numpy's stable sorts instead."""
    eps = 1e-14
    counts, lib_ref = ref["x"], ref["lib"]
    rows, g = xb.shape
    obs2 = np.full((rows, g), np.inf)
    ref2 = np.zeros((rows, g))
    n = np.zeros(rows, dtype=np.int64)
    pos_ref = counts > eps
    for r in range(rows):  # a loop over the block's samples: each sample's own gene set
        obs = xb[r]
        npos = 2 * (obs > eps).astype(np.int64) + pos_ref
        kept = npos != 0
        obs, refc, npos = obs[kept], counts[kept], npos[kept]
        zero_obs = npos == 1
        zero_ref = npos == 2
        k = zero_obs | zero_ref
        n_singles = min(int(zero_obs.sum()), int(zero_ref.sum()))
        if n_singles > 0:
            refk = np.sort(refc[k])[::-1][:n_singles]
            obsk = np.sort(obs[k])[::-1][:n_singles]
            obs = np.concatenate([obs[~k], obsk])
            refc = np.concatenate([refc[~k], refk])
        else:
            obs = obs[~k]
            refc = refc[~k]
        n[r] = obs.size
        obs2[r, : obs.size] = obs
        ref2[r, : obs.size] = refc
    lib_obs = lib_b[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        obs_p = obs2 / lib_obs
        ref_p = ref2 / lib_ref
        logs_m = log2_libm_rows(obs_p / ref_p, order=True)
        logs_a = log2_libm_rows(obs_p * ref_p, order=True)
        shrunk = ((obs2 + 0.5) / (lib_obs + 0.5)) / ((ref2 + 0.5) / (lib_ref + 0.5))
        M_shrunk = log2_libm_rows(shrunk, order=True).values
    M, A = logs_m.values, 0.5 * logs_a.values
    sorted_m, sorted_a = logs_m.sorted, 0.5 * logs_a.sorted
    out = np.ones(rows)
    for r in range(rows):  # R's trims and sums, per sample
        nr = int(n[r])
        if nr == 0:
            continue
        Mr, Ar, Sr = M[r, :nr], A[r, :nr], M_shrunk[r, :nr]
        exact = (
            logs_m.n_finite[r] == nr
            and logs_a.n_finite[r] == nr
            and np.all(sorted_m[r, 1:nr] >= sorted_m[r, : nr - 1])
            and np.all(sorted_a[r, 1:nr] >= sorted_a[r, : nr - 1])
        )
        if exact:
            if max(abs(sorted_m[r, 0]), abs(sorted_m[r, nr - 1])) < 1e-6:
                continue
        elif np.max(np.abs(Mr)) < 1e-6:
            continue
        lo_m = int(nr * logratio_trim) + 1
        lo_a = int(nr * sum_trim) + 1
        if exact:
            keep_m = _stable_position_window(Mr, sorted_m[r, :nr], lo_m, nr + 1 - lo_m, Sr)
            keep_a = _stable_position_window(Ar, sorted_a[r, :nr], lo_a, nr + 1 - lo_a)
        else:
            keep_m = np.zeros(nr, dtype=bool)
            keep_m[np.lexsort((Sr, Mr))[lo_m - 1 : nr + 1 - lo_m]] = True
            keep_a = np.zeros(nr, dtype=bool)
            keep_a[np.argsort(Ar, kind="stable")[lo_a - 1 : nr + 1 - lo_a]] = True
        keep = keep_m & keep_a
        Mk = Mr[keep]
        if do_weighting:
            op = obs_p[r, :nr][keep]
            rp = ref_p[r, :nr][keep]
            v = (1 - op) / op / lib_b[r] + (1 - rp) / rp / lib_ref
            w = (1 + 1e-6) / (v + 1e-6)
            out[r] = 2.0 ** (r_sum(w * Mk) / r_sum(w))
        else:
            out[r] = 2.0 ** r_mean(Mk)
    return out


def _reference(x: np.ndarray, lib: np.ndarray, ref_column: int) -> dict:
    """What every sample's TMM compares with: the reference column's counts, library size,
    proportions, their (tie-checked) logarithms and edgeR's variance term."""
    counts = np.ascontiguousarray(x[:, ref_column])
    n_ref = lib[ref_column]
    with np.errstate(divide="ignore", invalid="ignore"):
        p = counts / n_ref
        v = (n_ref - counts) / n_ref / counts
    return {"x": counts, "lib": n_ref, "p": p, "log2_p": log2_libm(p), "v": v}


def calc_norm_factors(
    counts,
    lib_size=None,
    method: str = "TMM",
    ref_column: int | None = None,
    logratio_trim: float = 0.3,
    sum_trim: float = 0.05,
    do_weighting: bool = True,
    a_cutoff: float = -1e10,
    p: float = 0.75,
) -> np.ndarray:
    """Normalisation factors of the columns of ``counts``, as edgeR's ``calcNormFactors``.

    ``counts`` is features x samples; ``lib_size`` defaults to the column sums (pass the kept
    features' column sums after filtering, as ``y[keep, , keep.lib.sizes = FALSE]`` does).
    ``ref_column`` is 0-based (R's ``refColumn`` minus one).  As edgeR: features with no positive
    count are dropped first; with TMM the reference is the sample whose upper-quartile factor is
    closest to their mean (or, when the median upper quartile is below 1e-20, the largest column sum
    of square roots, which is TMMwsp's choice); the factors are scaled to geometric mean 1.
    """
    x = count_matrix(counts)
    row_max = x.max(axis=1) if x.shape[1] else np.zeros(x.shape[0])  # NaN where a row has NaN
    if np.isnan(row_max).any():
        raise ValueError("NA counts not permitted")
    nsamples = x.shape[1]
    if lib_size is None:
        lib = col_sums(x)  # R's colSums (long double): non-integer counts' ties depend on its bits
    else:
        lib = np.asarray(lib_size, dtype=np.float64).ravel()
        if np.isnan(lib).any():
            raise ValueError("NA lib.sizes not permitted")
        if lib.size != nsamples:
            lib = np.resize(lib, nsamples)
    if method == "TMMwzp":
        method = "TMMwsp"
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    allzero = ~(row_max > 0)  # no positive count (rowSums(x > 0) == 0)
    if allzero.any():
        x = x[~allzero]
    if x.shape[0] == 0 or nsamples == 1:
        method = "none"

    if method in ("TMM", "TMMwsp"):
        if ref_column is None:
            f75 = _factor_quantile(x, lib, 0.75) if method == "TMM" else None
            if method == "TMMwsp" or np.median(f75) < 1e-20:
                ref_column = int(np.argmax(col_sums(np.sqrt(x))))
            else:
                ref_column = int(np.argmin(np.abs(f75 - r_mean(f75))))
        factor = _factor_tmm if method == "TMM" else _factor_tmmwsp
        ref = _reference(x, lib, ref_column)
        f = np.empty(nsamples)
        step = rows_per_block(x.shape[0], COMPUTE_VALUES)
        for cols, xb in _sample_blocks(x):
            for s in range(0, xb.shape[0], step):
                rows = slice(cols.start + s, cols.start + min(s + step, xb.shape[0]))
                f[rows] = factor(
                    xb[s : s + step],
                    lib[rows],
                    ref,
                    logratio_trim,
                    sum_trim,
                    do_weighting,
                    a_cutoff,
                )
    elif method == "upperquartile":
        f = _factor_quantile(x, lib, p)
    else:
        f = np.ones(nsamples)
    return f / math.exp(r_mean(np.log(f)))
