"""statmod's ``glmgam.fit`` (gamma GLM with identity link, Levenberg-damped Fisher scoring),
vectorised over many independent fits.

Ported rather than delegated to a library because the callers (``mixedModel2Fit`` and so limma's
``duplicateCorrelation``) need R's iterates, not only the optimum: the same start, the same damping
schedule (lambda = mean(diag(X'VX))/p at the first iteration, doubled on a deviance increase, divided
by 10 after an undamped step), the same variance floor ``pmax(mu^2, max(mu^2)/1e3)`` and the same
stopping rules (``crossprod(dl, dbeta) < tol``, ``dev/max(mu) < 1e-15``, ``iter > maxit``, "too much
damping" when ``lambda/maxinfo > 1e15``).  Each fit is one row of the arrays; rows that stop are
masked out while the others iterate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stacklm.rstats.cholesky import batched_cholesky, cholesky_solve

#: stopping reasons (``GlmGamFit.status``)
CONVERGED = 0  #: crossprod(dl, dbeta) < tol, or the deviance is ~0 (a perfect fit)
MAXIT = 1  #: stopped because iter > maxit, not converged
DAMPED = 2  #: "Too much damping - convergence tolerance not achievable" (R warns)
ERROR = 3  #: R stops with an error (negative starting fitted values, a failed Cholesky, NA tests)
ZERO = 4  #: max(y) == 0: R returns zero coefficients without iterating


@dataclass
class GlmGamFit:
    """Results of :func:`glmgam_fit`, one row per fit (as R's list, plus the stopping details)."""

    coefficients: np.ndarray  # m x p (NaN where status == ERROR)
    fitted_values: np.ndarray  # m x k
    deviance: np.ndarray  # m
    iter: np.ndarray  # m, iterations run (R's ``iter``)
    crit: np.ndarray  # m, the last crossprod(dl, dbeta) (NaN before any iteration)
    status: np.ndarray  # m, one of CONVERGED, MAXIT, DAMPED, ERROR, ZERO

    @property
    def converged(self) -> np.ndarray:
        return self.status == CONVERGED


def gamma_deviance(y: np.ndarray, mu: np.ndarray, count: np.ndarray) -> np.ndarray:
    """statmod's internal ``deviance.gamma`` for each row: ``2 * sum((y - mu)/mu - log(y/mu))``
    over the components with ``count > 0`` (each counted ``count`` times), leaving out the terms
    with both ``y`` and ``mu`` below 1e-15; ``Inf`` when a fitted value is negative."""
    present = count > 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        term = (y - mu) / mu - np.log(y / mu)
    use = present & ~((y < 1e-15) & (mu < 1e-15))
    dev = 2.0 * np.sum(np.where(use, count * np.where(use, term, 0.0), 0.0), axis=1)
    dev[np.any(present & (mu < 0), axis=1)] = np.inf
    return dev


def _cholesky_solve(A: np.ndarray, b: np.ndarray):
    """Solve A x = b for stacked symmetric p x p matrices (m x p x p) as R's ``chol`` then two
    ``backsolve`` calls; rows whose A is not positive definite come back False."""
    p = A.shape[1]
    L, pivots = batched_cholesky(np.ascontiguousarray(A.transpose(1, 2, 0)), p)
    return cholesky_solve(L, np.ascontiguousarray(b.T)).T, np.all(pivots > 0, axis=0)


def _or_na(a: np.ndarray, a_na: np.ndarray, b: np.ndarray, b_na: np.ndarray):
    """R's scalar ``a || b`` with NA: the value, and whether R would stop ("missing value where
    TRUE/FALSE needed")."""
    value = (a & ~a_na) | (b & ~b_na)
    error = ~value & (a_na | b_na)
    return value, error


def glmgam_fit(
    X: np.ndarray,
    y: np.ndarray,
    coef_start: np.ndarray,
    tol: float = 1e-6,
    maxit: int = 50,
    count: np.ndarray | None = None,
) -> GlmGamFit:
    """statmod's ``glmgam.fit(X, y, coef.start, tol, maxit)`` for many fits at once.

    ``y`` is m x k (one fit per row, non-negative), ``X`` the k x p design shared by all fits or an
    m x k x p stack, ``coef_start`` p or m x p (statmod's ``coef.start``; the other start rules of
    ``glmgam.fit`` are not ported: ``mixedModel2Fit`` always gives one).  ``count`` (k or m x k,
    default 1) repeats a component: a component with count c and response ybar stands for c
    components with the same row of X whose responses average ybar.  The iterates depend on those
    responses only through their sum, so the fit is R's; the reported deviance then differs from R's
    by a constant (only deviance differences enter the algorithm).  A count of 0 drops a component,
    so fits with different numbers of components can share one array.
    """
    y = np.asarray(y, dtype=np.float64)
    m, k = y.shape
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 2:
        X = np.broadcast_to(X, (m,) + X.shape)
    p = X.shape[2]
    count = np.ones((m, k)) if count is None else np.broadcast_to(np.asarray(count, float), (m, k))
    present = count > 0
    beta = np.array(np.broadcast_to(np.asarray(coef_start, dtype=np.float64), (m, p)))
    status = np.full(m, CONVERGED, dtype=np.int8)
    iters = np.zeros(m, dtype=np.int64)
    crit = np.full(m, np.nan)

    maxy = np.max(np.where(present, y, -np.inf), axis=1)
    zero = maxy == 0
    status[zero] = ZERO
    beta[zero] = 0.0
    mu = np.einsum("mkp,mp->mk", X, beta)
    mu[zero] = 0.0
    bad_start = ~zero & np.any(present & (mu < 0), axis=1)
    status[bad_start] = ERROR
    dev = gamma_deviance(y, mu, count)
    dev[zero] = np.nan
    lam = np.zeros(m)
    active = ~zero & ~bad_start
    eye = np.eye(p)
    it = 0
    while active.any():
        it += 1
        idx = np.flatnonzero(active)
        iters[idx] = it
        Xa, ya, ca, mua = X[idx], y[idx], count[idx], mu[idx]
        pa = ca > 0
        v = mua**2
        vmax = np.max(np.where(pa, v, -np.inf), axis=1)
        v = np.maximum(v, (vmax / 1e3)[:, None])
        wv = np.where(pa, ca / v, 0.0)
        XVX = np.einsum("mkp,mkq->mpq", Xa * wv[:, :, None], Xa)
        diag = np.diagonal(XVX, axis1=1, axis2=2)
        maxinfo = diag.max(axis=1)
        if it == 1:
            lam[idx] = np.abs(diag.mean(axis=1)) / p
        dl = np.einsum("mkp,mk->mp", Xa, wv * (ya - mua))
        betaold = beta[idx].copy()
        devold = dev[idx].copy()
        la = lam[idx]
        lev = np.zeros(idx.size, dtype=np.int64)
        dbeta = np.zeros_like(betaold)
        failed = np.zeros(idx.size, dtype=bool)
        pending = np.ones(idx.size, dtype=bool)
        while pending.any():
            sel = np.flatnonzero(pending)
            lev[sel] += 1
            db, ok = _cholesky_solve(XVX[sel] + la[sel, None, None] * eye, dl[sel])
            failed[sel[~ok]] = True
            dbeta[sel] = db
            b = betaold[sel] + db
            g = idx[sel]
            beta[g] = b
            mu_t = np.einsum("mkp,mp->mk", Xa[sel], b)
            mu[g] = mu_t
            dev_t = gamma_deviance(ya[sel], mu_t, ca[sel])
            dev[g] = dev_t
            with np.errstate(divide="ignore", invalid="ignore"):
                mmax = np.max(np.where(pa[sel], mu_t, -np.inf), axis=1)
                rel = dev_t / mmax
            accept, err = _or_na(
                dev_t <= devold[sel],
                np.isnan(dev_t) | np.isnan(devold[sel]),
                rel < 1e-15,
                np.isnan(rel),
            )
            failed[sel[err]] = True
            reject = ~accept & ~err & ok
            too_much = reject & (la[sel] / maxinfo[sel] > 1e15)
            tm = sel[too_much]
            beta[idx[tm]] = betaold[tm]
            again = sel[reject & ~too_much]
            la[again] *= 2.0
            pending[:] = False
            pending[again] = True
        lam[idx] = la
        # the tests after the damping loop, in R's order
        stop = failed.copy()
        status[idx[failed]] = ERROR
        damped = ~stop & (la / maxinfo > 1e15)
        status[idx[damped]] = DAMPED
        stop |= damped
        la = np.where(~stop & (lev == 1), la / 10.0, la)
        lam[idx] = la
        c = np.einsum("mp,mp->m", dl, dbeta)
        crit[idx] = c
        with np.errstate(divide="ignore", invalid="ignore"):
            mmax = np.max(np.where(pa, mu[idx], -np.inf), axis=1)
            rel = dev[idx] / mmax
        conv, err = _or_na(c < tol, np.isnan(c), rel < 1e-15, np.isnan(rel))
        err &= ~stop
        status[idx[err]] = ERROR
        stop |= err
        conv &= ~stop
        status[idx[conv]] = CONVERGED
        stop |= conv
        maxed = ~stop & (it > maxit)
        status[idx[maxed]] = MAXIT
        stop |= maxed
        active[idx[stop]] = False

    error = status == ERROR
    beta[error] = np.nan
    return GlmGamFit(
        coefficients=beta,
        fitted_values=mu,
        deviance=dev,
        iter=iters,
        crit=crit,
        status=status,
    )
