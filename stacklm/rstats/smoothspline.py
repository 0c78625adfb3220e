"""R's ``smooth.spline`` (smspline.R, sbart.c, sslvrg.f, sgram.f, stxwx.f, sinerp.f, bsplvd.f,
bvalue.f, LINPACK dpbfa/dpbsl), as qvalue's ``pi0est`` uses it."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from stacklm.rstats.basic import seq

# --------------------------------------------------------------------------------------------
# smooth.spline (R stats: smspline.R, sbart.c, sslvrg.f, sgram.f, stxwx.f, sinerp.f,
# bsplvd.f, bvalue.f, LINPACK dpbfa/dpbsl). Knot vectors are used with 1-based indexing:
# ``t1[0]`` is a dummy so that ``t1[i]`` is Fortran's ``t(i)``.
# --------------------------------------------------------------------------------------------


def _nknots_smspl(n: int) -> int:
    """R's ``.nknots.smspl(n)``."""
    if n < 50:
        return n
    a1, a2, a3, a4 = math.log2(50), math.log2(100), math.log2(140), math.log2(200)
    if n < 200:
        val = 2 ** (a1 + (a2 - a1) * (n - 50) / 150)
    elif n < 800:
        val = 2 ** (a2 + (a3 - a2) * (n - 200) / 600)
    elif n < 3200:
        val = 2 ** (a3 + (a4 - a3) * (n - 800) / 2400)
    else:
        val = 200 + (n - 3200) ** 0.2
    return int(math.trunc(val))


class _BsplvbState:
    """The Fortran SAVEd variables of ``bsplvb`` (j, deltal, deltar), one per point."""

    def __init__(self, n_points: int, jmax: int = 20):
        self.j = 1
        self.deltal = np.zeros((n_points, jmax + 1))
        self.deltar = np.zeros((n_points, jmax + 1))


def _bsplvb(t1, jhigh, index, x, left, biatx, state: _BsplvbState) -> None:
    """de Boor's ``bsplvb``, vectorised over points (biatx is (points, >= jhigh + 1))."""
    if index == 1:
        state.j = 1
        biatx[:, 1] = 1.0
        if state.j >= jhigh:
            return
    while True:
        j = state.j
        jp1 = j + 1
        state.deltar[:, j] = t1[left + j] - x
        state.deltal[:, j] = x - t1[left + 1 - j]
        saved = np.zeros(x.shape)
        for i in range(1, j + 1):
            term = biatx[:, i] / (state.deltar[:, i] + state.deltal[:, jp1 - i])
            biatx[:, i] = saved + state.deltar[:, i] * term
            saved = state.deltal[:, jp1 - i] * term
        biatx[:, jp1] = saved
        state.j = jp1
        if state.j >= jhigh:
            return


def _bsplvd(t1, x, left, nderiv: int, k: int = 4) -> np.ndarray:
    """de Boor's ``bsplvd``: values and derivatives of the k B-splines non-zero at x.

    Returns an array (points, k + 1, nderiv + 1) indexed 1-based like ``dbiatx(i, m)``.
    """
    x = np.asarray(x, dtype=np.float64)
    left = np.asarray(left, dtype=np.int64)
    npts = x.size
    mhigh = max(min(nderiv, k), 1)
    kp1 = k + 1
    dbiatx = np.zeros((npts, k + 1, mhigh + 1))
    col1 = np.zeros((npts, k + 2))
    state = _BsplvbState(npts)
    _bsplvb(t1, kp1 - mhigh, 1, x, left, col1, state)
    if mhigh > 1:
        ideriv = mhigh
        for _m in range(2, mhigh + 1):
            jp1mid = 1
            for j in range(ideriv, k + 1):
                dbiatx[:, j, ideriv] = col1[:, jp1mid]
                jp1mid += 1
            ideriv -= 1
            _bsplvb(t1, kp1 - ideriv, 2, x, left, col1, state)
    dbiatx[:, 1:, 1] = col1[:, 1 : k + 1]
    if mhigh == 1:
        return dbiatx
    a = np.zeros((npts, k + 1, k + 1))
    for i in range(1, k + 1):
        a[:, i, i] = 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        for m in range(2, mhigh + 1):
            kp1mm = kp1 - m
            fkp1mm = float(kp1mm)
            il = left.copy()
            i = k
            for _ in range(kp1mm):
                factor = fkp1mm / (t1[il + kp1mm] - t1[il])
                for j in range(1, i + 1):
                    a[:, i, j] = (a[:, i, j] - a[:, i - 1, j]) * factor
                il = il - 1
                i -= 1
            new = np.zeros((npts, k + 1))
            for i in range(1, k + 1):
                s = np.zeros(npts)
                for j in range(max(i, m), k + 1):
                    s = a[:, j, i] * dbiatx[:, j, m] + s
                new[:, i] = s
            dbiatx[:, 1:, m] = new[:, 1:]
    return dbiatx


def _interv(t1, n_knots_used: int, x) -> tuple[np.ndarray, np.ndarray]:
    """R's ``interv(t, n, x, 0, 0, ...)``: max i <= n with t(i) <= x, and mflag."""
    tk = t1[1 : n_knots_used + 1]
    i = np.searchsorted(tk, x, side="right")
    mflag = np.where(i == 0, -1, np.where(x >= tk[-1], 1, 0))
    return i, mflag


def _sgram(t1, nb: int):
    """``sgram``: banded Gram matrix of B'' (note R's 0.3330 instead of 1/3)."""
    sg = np.zeros((4, nb + 1))  # sg[d, i] = sg{d}(i), 1-based i
    pts = t1[1 : nb + 1]
    ileft, _ = _interv(t1, nb + 1, pts)
    vl = _bsplvd(t1, pts, ileft, 3)[:, :, 3]
    vr = _bsplvd(t1, t1[2 : nb + 2], ileft, 3)[:, :, 3]
    for idx in range(nb):
        i = idx + 1
        lft = int(ileft[idx])
        yw1 = vl[idx]
        yw2 = vr[idx] - yw1
        wpt = t1[i + 1] - t1[i]
        if lft >= 4:
            nterm, off = 4, lft - 4
        elif lft == 3:
            nterm, off = 3, lft - 3
        elif lft == 2:
            nterm, off = 2, lft - 2
        else:
            nterm, off = 1, lft - 1
        for ii in range(1, nterm + 1):
            for d in range(4):
                jj = ii + d
                if jj > nterm:
                    break
                sg[d, off + ii] = sg[d, off + ii] + wpt * (
                    yw1[ii] * yw1[jj]
                    + (yw2[ii] * yw1[jj] + yw2[jj] * yw1[ii]) * 0.5
                    + yw2[ii] * yw2[jj] * 0.3330
                )
    return sg[:, 1:]


def _stxwx(x, z, w, t1, nk: int):
    """``stxwx``: X'W^2 z and the 4 bands of X'W^2 X for the cubic B-spline basis."""
    ileft, mflag = _interv(t1, nk + 1, x)
    eps = 0.1e-9
    at_right = mflag == 1
    if np.any(at_right & ~(x <= t1[np.minimum(ileft, nk + 1)] + eps)):
        raise RuntimeError("smooth.spline: data point beyond the last knot")
    ileft = np.where(at_right, ileft - 1, ileft)
    v = _bsplvd(t1, x, ileft, 1)[:, :, 1]
    w2 = w**2
    # per point, the Fortran terms in their order of accumulation
    y_terms = (w2 * z)[:, None] * v[:, 1:5]  # (w^2 z) v_c
    h_terms = [w2[:, None] * v[:, 1:5] ** 2] + [
        (w2[:, None] * v[:, 1 : 5 - d]) * v[:, 1 + d : 5] for d in range(1, 4)
    ]
    y = [0.0] * (nk + 1)
    hs = [[0.0] * (nk + 1) for _ in range(4)]
    y_terms = y_terms.tolist()
    h_terms = [h.tolist() for h in h_terms]
    for i, lft in enumerate(ileft.tolist()):
        for c in range(4):
            j = lft - 3 + c
            y[j] = y[j] + y_terms[i][c]
            for d in range(4 - c):
                hs[d][j] = hs[d][j] + h_terms[d][i][c]
    return np.array(y[1:]), np.array(hs)[:, 1:]


def _dpbfa(abd: np.ndarray) -> int:
    """LINPACK ``dpbfa`` for bandwidth m = 3, in place on ``abd`` (4 x nk, 0-based rows)."""
    m = 3
    nk = abd.shape[1]
    a = abd.T.tolist()  # a[col][row]
    for j in range(1, nk + 1):
        s = 0.0
        ik = m + 1
        jk = max(j - m, 1)
        mu = max(m + 2 - j, 1)
        for k in range(mu, m + 1):
            dot = 0.0
            col_jk = a[jk - 1]
            col_j = a[j - 1]
            for ll in range(k - mu):
                dot = dot + col_jk[ik - 1 + ll] * col_j[mu - 1 + ll]
            t = (col_j[k - 1] - dot) / col_jk[m]
            col_j[k - 1] = t
            s = s + t * t
            ik -= 1
            jk += 1
        s = a[j - 1][m] - s
        if s <= 0.0:
            abd[:] = np.array(a).T
            return j
        a[j - 1][m] = math.sqrt(s)
    abd[:] = np.array(a).T
    return 0


def _dpbsl(abd: np.ndarray, b: np.ndarray) -> np.ndarray:
    """LINPACK ``dpbsl`` (m = 3): solve R'R x = b with the factor from :func:`_dpbfa`."""
    m = 3
    nk = abd.shape[1]
    a = abd.T.tolist()
    x = [float(v) for v in b]
    for k in range(1, nk + 1):
        lm = min(k - 1, m)
        la = m + 1 - lm
        lb = k - lm
        t = 0.0
        for ll in range(lm):
            t = t + a[k - 1][la - 1 + ll] * x[lb - 1 + ll]
        x[k - 1] = (x[k - 1] - t) / a[k - 1][m]
    for kb in range(1, nk + 1):
        k = nk + 1 - kb
        lm = min(k - 1, m)
        la = m + 1 - lm
        lb = k - lm
        x[k - 1] = x[k - 1] / a[k - 1][m]
        t = -x[k - 1]
        for ll in range(lm):
            x[lb - 1 + ll] = x[lb - 1 + ll] + t * a[k - 1][la - 1 + ll]
    return np.array(x)


def _sinerp(abd: np.ndarray) -> np.ndarray:
    """``sinerp`` pass 1: the 4 bands of (R'R)^{-1} (p1ip, 4 x nk, 0-based rows)."""
    nk = abd.shape[1]
    a = abd.T.tolist()
    p1 = [[0.0] * 4 for _ in range(nk)]
    wjm3 = [0.0, 0.0, 0.0]
    wjm2 = [0.0, 0.0]
    wjm1 = [0.0]
    c1 = c2 = c3 = 0.0
    for i in range(1, nk + 1):
        j = nk - i + 1
        c0 = 1.0 / a[j - 1][3]
        if j <= nk - 3:
            c1 = a[j + 2][0] * c0
            c2 = a[j + 1][1] * c0
            c3 = a[j][2] * c0
        elif j == nk - 2:
            c1 = 0.0
            c2 = a[j + 1][1] * c0
            c3 = a[j][2] * c0
        elif j == nk - 1:
            c1 = 0.0
            c2 = 0.0
            c3 = a[j][2] * c0
        else:
            c1 = c2 = c3 = 0.0
        col = p1[j - 1]
        col[0] = 0.0 - (c1 * wjm3[0] + c2 * wjm3[1] + c3 * wjm3[2])
        col[1] = 0.0 - (c1 * wjm3[1] + c2 * wjm2[0] + c3 * wjm2[1])
        col[2] = 0.0 - (c1 * wjm3[2] + c2 * wjm2[1] + c3 * wjm1[0])
        col[3] = (
            c0 * c0
            + c1 * c1 * wjm3[0]
            + 2.0 * c1 * c2 * wjm3[1]
            + 2.0 * c1 * c3 * wjm3[2]
            + c2 * c2 * wjm2[0]
            + 2.0 * c2 * c3 * wjm2[1]
            + c3 * c3 * wjm1[0]
        )
        wjm3[0] = wjm2[0]
        wjm3[1] = wjm2[1]
        wjm3[2] = col[1]
        wjm2[0] = wjm1[0]
        wjm2[1] = col[2]
        wjm1[0] = col[3]
    return np.array(p1).T


def _bvalue(t1, bcoef: np.ndarray, n: int, x: np.ndarray) -> np.ndarray:
    """``bvalue(t, bcoef, n, 4, x, 0)`` vectorised, for x inside [t(4), t(n+1)]."""
    k = 4
    i, _ = _interv(t1, n + k, x)
    i = np.where((x == t1[n + 1]) & (t1[n + 1] == t1[n + k]), n, i)
    if np.any(i < k) or np.any(i > n):
        raise RuntimeError("smooth.spline prediction outside the knot range")
    dm = [None] + [x - t1[i + 1 - j] for j in range(1, k)]
    dp = [None] + [t1[i + j] - x for j in range(1, k)]
    b1 = np.concatenate([[np.nan], bcoef])
    aj = [None] + [b1[i - k + jc] for jc in range(1, k + 1)]
    for j in range(1, k):
        kmj = k - j
        ilo = kmj
        for jj in range(1, kmj + 1):
            aj[jj] = (aj[jj + 1] * dm[ilo] + aj[jj] * dp[jj]) / (dm[ilo] + dp[jj])
            ilo -= 1
    return aj[1]


class SplineFailure(RuntimeError):
    """smooth.spline could not be fitted (R would stop or warn and return a constant)."""


@dataclass(frozen=True)
class SmoothSpline:
    """A fitted ``smooth.spline``: R's ``fit$fit`` (knots, coefficients, x scaling) plus
    ``fitted`` (``fit$y``), ``df``, ``spar``, ``lam`` (``lambda``), ``crit`` and the number of
    iterations of the spar search (``fit$iparms["iter"]``)."""

    knot1: np.ndarray  # knot vector with a dummy at index 0 (Fortran 1-based indexing)
    nk: int
    coef: np.ndarray
    xmin: float
    xrange: float
    fitted: np.ndarray  # fit$y at the (unique, sorted) x
    df: float  # R's fit$df = sum(lev) (long double sum; the criterion uses Fortran's sum)
    spar: float
    lam: float
    crit: float
    iterations: int

    def predict(self, x: np.ndarray) -> np.ndarray:
        """``predict(fit, x)$y`` for x inside the fitted range (no extrapolation needed here)."""
        xs = (np.asarray(x, dtype=np.float64) - self.xmin) / self.xrange
        if np.any(xs < 0) or np.any(xs > 1):
            raise SplineFailure("prediction outside the fitted range")
        return _bvalue(self.knot1, self.coef, self.nk, xs)


def _sslvrg(x, y, ssw, t1, nk, lam, xwy, hs, sg, df_target):
    """``sslvrg`` for unit weights: coefficients, fitted values, df and the criterion.

    ``df_target`` None: GCV (icrit 1, df.offset 0, penalty 1); else ``3 + (df_target - df)^2``
    (icrit 3).
    """
    abd = np.zeros((4, nk))
    abd[3] = hs[0] + lam * sg[0]
    abd[2, 1:] = hs[1, :-1] + lam * sg[1, :-1]
    abd[1, 2:] = hs[2, :-2] + lam * sg[2, :-2]
    abd[0, 3:] = hs[3, :-3] + lam * sg[3, :-3]
    if _dpbfa(abd) != 0:
        return None
    coef = _dpbsl(abd, xwy)
    sz = _bvalue(t1, coef, nk, x)
    p1ip = _sinerp(abd)
    ileft, mflag = _interv(t1, nk + 1, x)
    eps = 1e-11
    xv = np.where(mflag == 1, t1[nk + 1] - eps, np.where(mflag == -1, t1[4] + eps, x))
    ileft = np.where(mflag == 1, nk, np.where(mflag == -1, 4, ileft))
    v = _bsplvd(t1, xv, ileft, 1)[:, :, 1]
    b0, b1, b2, b3 = v[:, 1], v[:, 2], v[:, 3], v[:, 4]
    j = ileft - 4  # 0-based column of p1ip for Fortran's j = ileft - 3
    lev = (
        p1ip[3, j] * b0**2
        + 2.0 * p1ip[2, j] * b0 * b1
        + 2.0 * p1ip[1, j] * b0 * b2
        + 2.0 * p1ip[0, j] * b0 * b3
        + p1ip[3, j + 1] * b1**2
        + 2.0 * p1ip[2, j + 1] * b1 * b2
        + 2.0 * p1ip[1, j + 1] * b1 * b3
        + p1ip[3, j + 2] * b2**2
        + 2.0 * p1ip[2, j + 2] * b2 * b3
        + p1ip[3, j + 3] * b3**2
    )  # times w(i)^2 = 1
    df = float(np.cumsum(lev)[-1])  # Fortran's sequential sum
    if df_target is None:
        rss = float(ssw + np.cumsum((y - sz) ** 2)[-1])
        sumw = float(x.size)
        crit = (rss / sumw) / ((1.0 - (0.0 + 1.0 * df) / sumw) ** 2)
    else:
        crit = 3.0 + (df_target - df) ** 2
    return coef, sz, lev, crit


def smooth_spline(x: np.ndarray, y: np.ndarray, df: float | None = None) -> SmoothSpline:
    """R's ``smooth.spline(x, y)`` (GCV) or ``smooth.spline(x, y, df = df)``, unit weights.

    As R: cubic B-splines on x scaled to [0, 1] with knots at ``.nknots.smspl(n)`` of the x,
    penalty the integrated squared second derivative, ``lambda = r * 256^(3 spar - 1)`` with
    ``r = tr(X'WX) / tr(Omega)``, and ``spar`` minimising the criterion -- GCV (``df`` None) or
    ``3 + (df - tr(S_lambda))^2`` -- by the Brent/golden-section search of ``sbart.c`` on
    [-1.5, 1.5] (tol 1e-4, eps 2e-8).

    ``x`` must be strictly increasing and its values distinct at R's tolerance
    ``1e-6 * IQR(x)`` (true for the lambda grid of pi0est and for a density grid).  As in R, the
    coefficients and fitted values are those of the LAST criterion evaluation of the Brent search
    (``sbart`` does not refit at the returned ``spar``).  ``df`` outside (1, n] is ignored with
    a warning, as in R.
    """
    n = x.size
    if n < 4:
        raise SplineFailure("need at least four unique x values")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise SplineFailure("missing or infinite values in the smoothing spline input")
    if np.any(np.diff(x) <= 0):
        raise SplineFailure("x must be strictly increasing")
    if df is not None and not (1 < df <= n):
        warnings.warn(
            f"smooth.spline: not using invalid df; must have 1 < df <= n := #{{unique x}} = {n}",
            stacklevel=3,
        )
        df = None
    r_ux = x[-1] - x[0]
    xbar = (x - x[0]) / r_ux
    nknots = _nknots_smspl(n)
    knot_idx = np.trunc(seq(1.0, float(n), nknots)).astype(np.int64) - 1
    knot = np.concatenate([np.repeat(xbar[0], 3), xbar[knot_idx], np.repeat(xbar[-1], 3)])
    nk = nknots + 2
    t1 = np.concatenate([[np.nan], knot])
    ones = np.ones(n)  # sqrt of unit weights
    ssw = 0.0  # sum(w y^2 - w ybar^2) with unique x and unit weights
    sg = _sgram(t1, nk)
    xwy, hs = _stxwx(xbar, y, ones, t1, nk)
    t1s = 0.0
    t2s = 0.0
    for i in range(2, nk - 3):
        t1s += hs[0, i]
        t2s += sg[0, i]
    ratio = t1s / t2s

    last: dict = {}

    def evaluate(spar: float) -> float:
        lam = ratio * 16.0 ** (spar * 6.0 - 2.0)
        res = _sslvrg(xbar, y, ssw, t1, nk, lam, xwy, hs, sg, df)
        if res is None:
            raise SplineFailure(f"banded Cholesky failed at spar = {spar:.4g}")
        last["coef"], last["sz"], last["lev"], crit = res
        last["lam"] = lam
        return crit

    # Brent / golden-section minimisation exactly as in sbart.c
    c_gold = 0.381966011250105151795413165634
    big = 1e100
    tol, eps_, maxit = 1e-4, 2e-8, 500
    a, b = -1.5, 1.5
    v = a + c_gold * (b - a)
    w_ = v
    xx = v
    d = 0.0
    e = 0.0
    fx = evaluate(xx)
    fv = fw = fx
    it = 0
    while True:
        xm = (a + b) * 0.5
        tol1 = eps_ * abs(xx) + tol / 3.0
        tol2 = tol1 * 2.0
        it += 1
        if abs(xx - xm) <= tol2 - (b - a) * 0.5 or it > maxit:
            break
        golden = True
        if not (abs(e) <= tol1 or fx >= big or fv >= big or fw >= big):
            r = (xx - w_) * (fx - fv)
            q = (xx - v) * (fx - fw)
            p = (xx - v) * q - (xx - w_) * r
            q = (q - r) * 2.0
            if q > 0.0:
                p = -p
            q = abs(q)
            r = e
            e = d
            if not (abs(p) >= abs(0.5 * q * r) or q == 0.0) and not (
                p <= q * (a - xx) or p >= q * (b - xx)
            ):
                d = p / q
                u = xx + d
                if u - a < tol2 or b - u < tol2:
                    d = tol1 if xm - xx >= 0 else -tol1
                golden = False
        if golden:
            e = (a - xx) if xx >= xm else (b - xx)
            d = c_gold * e
        u = xx + (d if abs(d) >= tol1 else (tol1 if d >= 0 else -tol1))
        fu = evaluate(u)
        if not math.isfinite(fu):
            fu = 2.0 * big
        if fu <= fx:
            if u >= xx:
                a = xx
            else:
                b = xx
            v, fv = w_, fw
            w_, fw = xx, fx
            xx, fx = u, fu
        else:
            if u < xx:
                a = u
            else:
                b = u
            if fu <= fw or w_ == xx:
                v, fv = w_, fw
                w_, fw = u, fu
            elif fu <= fv or v == xx or v == w_:
                v, fv = u, fu
    return SmoothSpline(
        knot1=t1,
        nk=nk,
        coef=last["coef"],
        xmin=float(x[0]),
        xrange=float(r_ux),
        fitted=last["sz"],
        df=float(np.cumsum(last["lev"].astype(np.longdouble))[-1]),  # R: sum(lev)
        spar=xx,
        lam=last["lam"],
        crit=fx,
        iterations=it,
    )
