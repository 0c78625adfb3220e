"""qvalue 2.30: ``pi0est`` (smoother and bootstrap), ``lfdr`` and ``qvalue``."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from stacklm.multiple_testing.padjust import _decreasing_order
from stacklm.rstats.basic import dnorm, qnorm, quantile7
from stacklm.rstats.density import density
from stacklm.rstats.smoothspline import SplineFailure, smooth_spline

#: R's ``seq(0.05, 0.95, 0.05)`` to the last bit (``from + (0:18) * by``, capped at ``to``).
R_DEFAULT_LAMBDA = np.minimum(0.05 + np.arange(19, dtype=np.float64) * 0.05, 0.95)

# --------------------------------------------------------------------------------------------
# pi0est
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pi0Estimate:
    """Result of :func:`pi0_est` (``qvalue::pi0est``).

    ``pi0``: the estimate (in (0, 1]); ``pi0_lambda``: the raw estimates
    ``#(p >= lambda) / (m (1 - lambda))`` at each lambda; ``lambda_``: the sorted lambdas;
    ``pi0_smooth``: the smoother's fitted values at each lambda (``"smoother"`` only, else None);
    ``fallback``: the reason pi0 was set to 1 instead of estimated (None when estimated).
    """

    pi0: float
    pi0_lambda: np.ndarray
    lambda_: np.ndarray
    pi0_smooth: np.ndarray | None
    fallback: str | None = None


def _check_pvalues(p: np.ndarray, where: str) -> None:
    if p.size and (p.min() < 0 or p.max() > 1):
        raise ValueError(f"{where}: p-values not in valid range [0, 1]")


def _pi0_fallback(reason, pi0_lambda, lambda_, pi0_smooth=None) -> Pi0Estimate:
    warnings.warn(f"pi0 estimation failed ({reason}); using pi0 = 1", UserWarning, stacklevel=3)
    return Pi0Estimate(1.0, pi0_lambda, lambda_, pi0_smooth, fallback=reason)


def pi0_est(
    p,
    lambda_=R_DEFAULT_LAMBDA,
    pi0_method: str = "smoother",
    smooth_df: float = 3,
    smooth_log_pi0: bool = False,
) -> Pi0Estimate:
    """Proportion of true null p-values as ``qvalue::pi0est`` (qvalue 2.30).

    ``pi0(lambda) = #(p >= lambda) / (m (1 - lambda))`` on the grid ``lambda_`` (default R's
    ``seq(0.05, 0.95, 0.05)``, :data:`R_DEFAULT_LAMBDA`).  ``"smoother"``: R's
    ``smooth.spline(lambda, pi0(lambda), df = smooth_df)`` (on ``log pi0`` if
    ``smooth_log_pi0``), predicted at the largest lambda.  ``"bootstrap"``: the lambda minimising
    ``W / (m^2 (1 - lambda)^2) (1 - W / m) + (pi0(lambda) - q10)^2`` with ``W = #(p >= lambda)``
    and ``q10`` the 10% quantile of the pi0(lambda) (R's closed form, no resampling).  A single
    lambda gives ``pi0(lambda)``.  The estimate is clipped at 1.

    NaN p-values are ignored.  Never raises on valid p-values: where R stops (no p-values,
    ``max(p) < max(lambda)``, a non-positive or non-finite estimate, a failed spline fit) this
    returns ``pi0 = 1`` with a warning naming the reason (``fallback`` says it too).  Raises
    ``ValueError`` for p-values outside [0, 1] and invalid ``lambda_``/``pi0_method``, as R
    (and for repeated lambda values, which R's smooth.spline would merge).
    """
    if pi0_method not in ("smoother", "bootstrap"):
        raise ValueError("pi0_method must be 'smoother' or 'bootstrap'")
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    p = p[~np.isnan(p)]
    _check_pvalues(p, "pi0_est")
    lam = np.sort(np.atleast_1d(np.asarray(lambda_, dtype=np.float64)))
    ll = lam.size
    if 1 < ll < 4:
        raise ValueError(
            f"pi0_est: length(lambda) = {ll}; with more than one lambda at least 4 are needed"
        )
    if ll == 0 or lam.min() < 0 or lam.max() >= 1:
        raise ValueError("pi0_est: lambda must be within [0, 1)")
    if np.any(np.diff(lam) <= 0):
        raise ValueError("pi0_est: lambda values must be distinct")
    m = p.size
    if m == 0:
        return _pi0_fallback("no non-missing p-values", np.full(ll, np.nan), lam)
    if ll == 1:
        pi0_lambda = np.array([np.mean(p >= lam[0]) / (1 - lam[0])])
        pi0 = min(float(pi0_lambda[0]), 1.0)
        return _pi0_checked(pi0, pi0_lambda, lam, None)
    # counts of p >= lambda_k as R's cumsum(tabulate(findInterval(p, lambda))[ll:1])
    counts = np.bincount(np.searchsorted(lam, p, side="right"), minlength=ll + 1)[1:]
    at_least = np.cumsum(counts[::-1])[::-1]
    pi0_lambda = at_least / (m * (1 - lam))
    if p.max() < lam[-1]:
        # R: tabulate() is shorter than lambda, the missing bins are NA and so is every pi0
        return _pi0_fallback(
            f"max(p) = {p.max():.3g} < max(lambda) = {lam[-1]:.3g}", pi0_lambda, lam
        )
    if pi0_method == "smoother":
        values = pi0_lambda
        if smooth_log_pi0:
            with np.errstate(divide="ignore"):
                values = np.log(pi0_lambda)
        try:
            fit = smooth_spline(lam, values, df=smooth_df)
            smooth = fit.predict(lam)
        except SplineFailure as err:
            return _pi0_fallback(f"smooth.spline: {err}", pi0_lambda, lam)
        if smooth_log_pi0:
            smooth = np.exp(smooth)
        pi0 = min(float(smooth[-1]), 1.0)
        return _pi0_checked(pi0, pi0_lambda, lam, smooth)
    min_pi0 = quantile7(np.sort(pi0_lambda), 0.1)
    W = at_least.astype(np.float64)
    mse = (W / (float(m) ** 2 * (1 - lam) ** 2)) * (1 - W / m) + (pi0_lambda - min_pi0) ** 2
    pi0 = min(float(np.min(pi0_lambda[mse == mse.min()])), 1.0)
    return _pi0_checked(pi0, pi0_lambda, lam, None)


def _pi0_checked(pi0, pi0_lambda, lam, smooth) -> Pi0Estimate:
    if not math.isfinite(pi0):
        return _pi0_fallback("the estimate is not finite", pi0_lambda, lam, smooth)
    if pi0 <= 0:
        return _pi0_fallback(f"the estimate {pi0:.3g} is <= 0", pi0_lambda, lam, smooth)
    return Pi0Estimate(pi0, pi0_lambda, lam, smooth)


# --------------------------------------------------------------------------------------------
# lfdr
# --------------------------------------------------------------------------------------------


def lfdr(
    p,
    pi0: float | None = None,
    trunc: bool = True,
    monotone: bool = True,
    transf: str = "probit",
    adj: float = 1.5,
    eps: float = 1e-8,
    _order: np.ndarray | None = None,
    **pi0_args,
) -> np.ndarray:
    """Local false discovery rates as ``qvalue::lfdr`` (qvalue 2.30).

    ``"probit"``: ``x = qnorm(clip(p, eps, 1 - eps))``; ``f`` = R's ``density(x, adjust = adj)``
    smoothed by ``smooth.spline`` (GCV) and predicted at x; ``lfdr = pi0 dnorm(x) / f(x)``.
    ``"logit"``: ``x = log((p + eps) / (1 - p + eps))`` and ``lfdr = pi0 dx / f(x)`` with
    ``dx = e^x / (1 + e^x)^2``.  Then truncated at 1 (``trunc``) and made non-decreasing in p
    (``monotone``).  ``pi0`` None estimates it by :func:`pi0_est` with ``pi0_args``.

    NaN p-values are ignored and stay NaN.  With fewer than 2 p-values (R: no bandwidth) or a
    failed spline fit the result is NaN with a warning.  ``_order``: an increasing order of the
    non-missing p-values when the caller has one (:func:`qvalue`), instead of sorting them again.
    """
    if transf not in ("probit", "logit"):
        raise ValueError("transf must be 'probit' or 'logit'")
    p_in = np.asarray(p, dtype=np.float64)
    out = np.full(p_in.shape, np.nan)
    flat = out.reshape(-1)
    keep = ~np.isnan(p_in.reshape(-1))
    pv = p_in.reshape(-1)[keep]
    _check_pvalues(pv, "lfdr")
    if pi0 is None:
        pi0 = pi0_est(pv, **pi0_args).pi0
    if pv.size < 2:
        warnings.warn(
            f"lfdr needs at least 2 p-values for a density estimate (got {pv.size}); lfdr = NaN",
            UserWarning,
            stacklevel=2,
        )
        return out
    if transf == "probit":
        pv = np.minimum(np.maximum(pv, eps), 1 - eps)
        x = qnorm(pv)
    else:
        x = np.log((pv + eps) / (1 - pv + eps))
    grid_x, grid_y = density(x, adj)
    try:
        fit = smooth_spline(grid_x, grid_y)
        y = fit.predict(x)
    except SplineFailure as err:
        warnings.warn(f"lfdr: smooth.spline failed ({err}); lfdr = NaN", UserWarning, stacklevel=2)
        return out
    if transf == "probit":
        values = pi0 * dnorm(x) / y
    else:
        ex = np.exp(x)
        values = (pi0 * (ex / (1 + ex) ** 2)) / y
    if trunc:
        values[values > 1] = 1.0
    if monotone:
        # ties in any order: tied p have equal values
        order = np.argsort(pv) if _order is None else _order
        mono = np.empty_like(values)
        mono[order] = np.maximum.accumulate(values[order])
        values = mono
    flat[keep] = values
    return out


# --------------------------------------------------------------------------------------------
# qvalue
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QvalueResult:
    """Result of :func:`qvalue` (``qvalue::qvalue``); arrays have the input's length.

    ``qvalues``, ``lfdr`` (None if not requested), ``pi0``, ``pi0_lambda``, ``lambda_``,
    ``pi0_smooth`` (as R's list elements); ``significant`` (``qvalues <= fdr_level``, False at
    missing p-values) when ``fdr_level`` is given; ``pi0_fallback``: why pi0 was set to 1
    instead of estimated, if it was.
    """

    qvalues: np.ndarray
    lfdr: np.ndarray | None
    pi0: float
    pi0_lambda: np.ndarray | None
    lambda_: np.ndarray | None
    pi0_smooth: np.ndarray | None = None
    fdr_level: float | None = None
    significant: np.ndarray | None = None
    pi0_fallback: str | None = None


def qvalue(
    p,
    fdr_level: float | None = None,
    pfdr: bool = False,
    lfdr_out: bool = True,
    pi0: float | None = None,
    lambda_=R_DEFAULT_LAMBDA,
    pi0_method: str = "smoother",
    smooth_df: float = 3,
    smooth_log_pi0: bool = False,
    trunc: bool = True,
    monotone: bool = True,
    transf: str = "probit",
    adj: float = 1.5,
    eps: float = 1e-8,
) -> QvalueResult:
    """Storey's q-values as ``qvalue::qvalue`` (qvalue 2.30).

    ``pi0`` None: estimated by :func:`pi0_est` (``lambda_``, ``pi0_method``, ``smooth_df``,
    ``smooth_log_pi0``), with its fallback to 1 (and warning) where R would stop.  q-values are
    ``pi0 * min(1, cummin(p m / i))`` along decreasing p (``pfdr``: divided by
    ``1 - (1 - p)^m``); ``lfdr`` by :func:`lfdr` with the same pi0.  NaN p-values are ignored
    (m counts the others) and stay NaN.  Raises ``ValueError`` for p-values outside [0, 1],
    ``fdr_level`` outside (0, 1] or a given ``pi0`` outside (0, 1], as R.
    """
    p_in = np.asarray(p, dtype=np.float64)
    flat_p = p_in.reshape(-1)
    keep = ~np.isnan(flat_p)
    pv = flat_p[keep]
    _check_pvalues(pv, "qvalue")
    if fdr_level is not None and not (0 < fdr_level <= 1):
        raise ValueError("qvalue: 'fdr_level' must be in (0, 1]")
    fallback = None
    if pi0 is None:
        est = pi0_est(
            pv,
            lambda_=lambda_,
            pi0_method=pi0_method,
            smooth_df=smooth_df,
            smooth_log_pi0=smooth_log_pi0,
        )
        pi0_value, pi0_lambda, lam, pi0_smooth = (
            est.pi0,
            est.pi0_lambda,
            est.lambda_,
            est.pi0_smooth,
        )
        fallback = est.fallback
    else:
        if not (0 < pi0 <= 1):
            raise ValueError("qvalue: pi0 is not in (0, 1]")
        pi0_value, pi0_lambda, lam, pi0_smooth = float(pi0), None, None, None
    m = pv.size
    qvals = np.full(p_in.shape, np.nan)
    order = None
    if m:
        order = _decreasing_order(pv)
        i = np.arange(m, 0, -1, dtype=np.float64)
        po = pv[order]
        if pfdr:
            ratio = po * m / (i * (1 - (1 - po) ** m))
        else:
            ratio = po * m / i
        q_sorted = np.minimum(1.0, np.minimum.accumulate(ratio))
        q = np.empty(m)
        q[order] = q_sorted
        qvals.reshape(-1)[keep] = pi0_value * q
    lfdr_values = None
    if lfdr_out:
        lfdr_values = lfdr(
            p_in,
            pi0=pi0_value,
            trunc=trunc,
            monotone=monotone,
            transf=transf,
            adj=adj,
            eps=eps,
            _order=None if order is None else order[::-1],  # the same p-values, increasing
        )
    significant = None
    if fdr_level is not None:
        with np.errstate(invalid="ignore"):
            significant = qvals <= fdr_level
    return QvalueResult(
        qvalues=qvals,
        lfdr=lfdr_values,
        pi0=pi0_value,
        pi0_lambda=pi0_lambda,
        lambda_=lam,
        pi0_smooth=pi0_smooth,
        fdr_level=fdr_level,
        significant=significant,
        pi0_fallback=fallback,
    )
