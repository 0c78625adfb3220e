"""edgeR's ``calcNormFactors`` (``calcNormFactors.default``, edgeR 3.40.2): TMM, TMMwsp,
upper quartile, none.

A port rather than a re-derivation: the factors depend on discrete choices (reference column,
which genes the trims keep, ties in the ranks and orders of log ratios) that only the same
arithmetic reproduces.  Loops run over samples; every sample's work is vectorised over genes.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import rankdata

from ..rstats.basic import quantile7
from ..rstats.sums import col_sums, r_mean, r_sum
from ._rmath import log2_libm
from .cpm import count_matrix

METHODS = ("TMM", "TMMwsp", "upperquartile", "none")


def _factor_quantile(x: np.ndarray, lib_size: np.ndarray, p: float) -> np.ndarray:
    """edgeR's ``.calcFactorQuantile``: the p-quantile of each column over its library size."""
    f = np.array([quantile7(np.sort(x[:, j]), p) for j in range(x.shape[1])])
    return f / lib_size


def _factor_tmm(
    obs: np.ndarray,
    ref: np.ndarray,
    n_obs: float,
    n_ref: float,
    logratio_trim: float,
    sum_trim: float,
    do_weighting: bool,
    a_cutoff: float,
) -> float:
    """edgeR's ``.calcFactorTMM`` for one sample against the reference column."""
    with np.errstate(divide="ignore", invalid="ignore"):
        obs_p = obs / n_obs
        ref_p = ref / n_ref
        log_r = log2_libm(obs_p / ref_p)
        abs_e = (log2_libm(obs_p) + log2_libm(ref_p)) / 2
        v = (n_obs - obs) / n_obs / obs + (n_ref - ref) / n_ref / ref
    fin = np.isfinite(log_r) & np.isfinite(abs_e) & (abs_e > a_cutoff)
    log_r = log_r[fin]
    abs_e = abs_e[fin]
    v = v[fin]
    if log_r.size == 0 or np.max(np.abs(log_r)) < 1e-6:
        return 1.0
    n = log_r.size
    lo_l = math.floor(n * logratio_trim) + 1
    hi_l = n + 1 - lo_l
    lo_s = math.floor(n * sum_trim) + 1
    hi_s = n + 1 - lo_s
    rank_r = rankdata(log_r)
    rank_e = rankdata(abs_e)
    keep = (rank_r >= lo_l) & (rank_r <= hi_l) & (rank_e >= lo_s) & (rank_e <= hi_s)
    if do_weighting:
        f = r_sum(log_r[keep] / v[keep]) / r_sum(1 / v[keep])
    else:
        f = r_mean(log_r[keep])
    if math.isnan(f):
        f = 0.0
    return 2.0**f


def _factor_tmmwsp(
    obs: np.ndarray,
    ref: np.ndarray,
    lib_obs: float,
    lib_ref: float,
    logratio_trim: float,
    sum_trim: float,
    do_weighting: bool,
    a_cutoff: float,
) -> float:
    """edgeR's ``.calcFactorTMMwsp`` (TMM with singleton pairing) for one sample."""
    eps = 1e-14
    pos_obs = obs > eps
    pos_ref = ref > eps
    npos = 2 * pos_obs.astype(np.int64) + pos_ref
    drop = npos == 0
    if drop.any():
        obs = obs[~drop]
        ref = ref[~drop]
        npos = npos[~drop]
    zero_obs = npos == 1
    zero_ref = npos == 2
    k = zero_obs | zero_ref
    n_singles = min(int(zero_obs.sum()), int(zero_ref.sum()))
    if n_singles > 0:
        refk = np.sort(ref[k])[::-1][:n_singles]
        obsk = np.sort(obs[k])[::-1][:n_singles]
        obs = np.concatenate([obs[~k], obsk])
        ref = np.concatenate([ref[~k], refk])
    else:
        obs = obs[~k]
        ref = ref[~k]
    n = obs.size
    if n == 0:
        return 1.0
    obs_p = obs / lib_obs
    ref_p = ref / lib_ref
    M = log2_libm(obs_p / ref_p)
    A = 0.5 * log2_libm(obs_p * ref_p)
    if np.max(np.abs(M)) < 1e-6:
        return 1.0
    obs_p_shrunk = (obs + 0.5) / (lib_obs + 0.5)
    ref_p_shrunk = (ref + 0.5) / (lib_ref + 0.5)
    M_shrunk = log2_libm(obs_p_shrunk / ref_p_shrunk)
    o_m = np.lexsort((M_shrunk, M))  # order(M, M.shrunk): ties by M.shrunk, then position
    o_a = np.argsort(A, kind="stable")
    lo_m = int(n * logratio_trim) + 1
    hi_m = n + 1 - lo_m
    keep_m = np.zeros(n, dtype=bool)
    keep_m[o_m[lo_m - 1 : hi_m]] = True
    lo_a = int(n * sum_trim) + 1
    hi_a = n + 1 - lo_a
    keep_a = np.zeros(n, dtype=bool)
    keep_a[o_a[lo_a - 1 : hi_a]] = True
    keep = keep_m & keep_a
    M = M[keep]
    if do_weighting:
        obs_p = obs_p[keep]
        ref_p = ref_p[keep]
        v = (1 - obs_p) / obs_p / lib_obs + (1 - ref_p) / ref_p / lib_ref
        w = (1 + 1e-6) / (v + 1e-6)
        tmm = r_sum(w * M) / r_sum(w)
    else:
        tmm = r_mean(M)
    return 2.0**tmm


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
    if np.isnan(x).any():
        raise ValueError("NA counts not permitted")
    nsamples = x.shape[1]
    if lib_size is None:
        lib = x.sum(axis=0)
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
    allzero = (x > 0).sum(axis=1) == 0
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
        ref = x[:, ref_column]
        f = np.array(
            [
                factor(
                    x[:, i],
                    ref,
                    lib[i],
                    lib[ref_column],
                    logratio_trim,
                    sum_trim,
                    do_weighting,
                    a_cutoff,
                )
                for i in range(nsamples)
            ]
        )
    elif method == "upperquartile":
        f = _factor_quantile(x, lib, p)
    else:
        f = np.ones(nsamples)
    return f / math.exp(r_mean(np.log(f)))
