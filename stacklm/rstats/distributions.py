"""F distribution tails and quantiles as R's ``pf``/``qf``/``df`` (through ``scipy.special``), and
the two-sided t tail ``2*pt(-|t|, df)`` with an exact interpolation table for a shared df."""

from __future__ import annotations

import numpy as np
from scipy import special

from stacklm.rstats.lazy import stats


def _f_sf(x, df1, df2, log=False):
    """Upper tail of F(df1, df2), with df2 = inf meaning chi-square(df1)/df1 (as R's pf)."""
    x, df1, df2 = np.broadcast_arrays(
        np.asarray(x, float), np.asarray(df1, float), np.asarray(df2, float)
    )
    out = np.empty(x.shape)
    inf = np.isinf(df2)
    if log:
        out[inf] = stats.chi2.logsf(x[inf] * df1[inf], df1[inf])
        out[~inf] = stats.f.logsf(x[~inf], df1[~inf], df2[~inf])
    elif inf.any():
        out[inf] = stats.chi2.sf(x[inf] * df1[inf], df1[inf])
        fin = ~inf
        out[fin] = special.fdtrc(df1[fin], df2[fin], np.maximum(x[fin], 0.0))
    else:
        # stats.f.sf's own function, without its argument checks and copies (same numbers;
        # x < 0, outside the support, is clipped to 0 where stats.f.sf returns 1)
        special.fdtrc(df1, df2, np.maximum(x, 0.0), out=out)
    return out


def _f_cdf_log(x, df1, df2):
    if np.isinf(df2):
        return stats.chi2.logcdf(x * df1, df1)
    return stats.f.logcdf(x, df1, df2)


def _f_ppf(q, df1, df2):
    if np.isinf(df2):
        return stats.chi2.ppf(q, df1) / df1
    return stats.f.ppf(q, df1, df2)


def _f_isf_log(logp, df1, df2):
    p = np.exp(logp)
    if np.isinf(df2):
        return stats.chi2.isf(p, df1) / df1
    return stats.f.isf(p, df1, df2)


def _f_ppf_log(logp, df1, df2):
    p = np.exp(logp)
    if np.isinf(df2):
        return stats.chi2.ppf(p, df1) / df1
    return stats.f.ppf(p, df1, df2)


def _f_pdf(x, df1, df2):
    if np.isinf(df2):
        return stats.chi2.pdf(x * df1, df1) * df1
    return stats.f.pdf(x, df1, df2)


# --------------------------------------------------------------------------------------------
# eBayes
# --------------------------------------------------------------------------------------------
def _t_logsf(t, df):
    return stats.t.logsf(t, df)


def _t_sf(x, df):
    """``stats.t.sf(x, df)`` (R's ``pt(x, df, lower.tail = FALSE)``) as its own function,
    ``stdtr(df, -x)``, without importing scipy.stats: the same numbers."""
    return special.stdtr(df, -np.asarray(x, dtype=np.float64))


def _t_isf(q, df):
    """``stats.t.isf(q, df)`` (R's ``qt(q, df, lower.tail = FALSE)``) as scipy.stats computes it
    (``-stdtrit(df, q)``, ``inf`` at q = 0, ``-inf`` at 1, NaN outside [0, 1]; ``* 1 + 0`` as
    its scale and location, which turns -0 into 0), without importing scipy.stats."""
    q = np.asarray(q, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        out = -special.stdtrit(df, q) * 1.0 + 0.0
        out = np.where(q == 0, np.inf, np.where(q == 1, -np.inf, out))
        return np.where((q >= 0) & (q <= 1), out, np.nan)


def _log_t_density_at_zero(nu: float) -> float:
    """log of the t density at 0, log(Gamma((nu+1)/2) / (Gamma(nu/2) sqrt(nu pi))), accurate for
    large nu (where the difference of log-gammas cancels) through its asymptotic series."""
    if nu < 100:
        return float(-0.5 * np.log(nu) - special.betaln(nu / 2, 0.5))
    x = nu / 2
    r = 1 / (x * x)
    series = (-1 / 8 + r * (1 / 192 + r * (-1 / 640 + r * (17 / 14336 - r * 31 / 18432)))) / x
    return float(0.5 * np.log(x) + series - 0.5 * np.log(nu * np.pi))


class _TwoSidedTTail:
    """``2 P(T_nu > |t|)`` for many t and one nu, fast: scipy's ``stdtr`` (the function
    ``stats.t.sf`` calls) is evaluated exactly on the grid t_i = i h of [0, t_hi), and in between
    log p is interpolated by the quintic Hermite polynomial that matches log p and its first two
    derivatives (from the t density) at both ends: p(t) = p(t_i) exp(r(t)).  The table is only
    used if, at every midpoint of the grid, it agrees with ``stdtr`` to ``rtol`` (relative); ``stdtr``
    itself agrees with R's ``pt`` to ~4e-13 for large nu, and the table with R to the same level.
    t beyond the grid (p < ``p_min`` or t >= ``t_max``), NaN and inf use ``stdtr`` directly.
    """

    def __init__(self, nu: float, h=1 / 64, t_max=64.0, p_min=1e-280, rtol=1e-12):
        self.nu = nu
        self.ok = False
        t_lim = -special.stdtrit(nu, p_min / 2)
        t_hi = min(t_max, t_lim) if np.isfinite(t_lim) else t_max
        n_int = int(np.floor(t_hi / h))
        if n_int < 2:
            return
        t = np.arange(n_int + 1) * h
        p1 = special.stdtr(nu, -t)  # one-sided upper tail
        logp1 = np.log(p1)
        hazard = np.exp(
            _log_t_density_at_zero(nu) - (nu + 1) / 2 * np.log1p(t * t / nu) - logp1
        )  # density / tail
        d1 = -hazard * h  # h d(log p)/dt
        d2 = hazard * ((nu + 1) * t / (nu + t * t) - hazard) * (h * h)  # h^2 d2(log p)/dt2
        dy = np.diff(logp1)
        a1, b1, a2, b2 = d1[:-1], d1[1:], d2[:-1], d2[1:]
        self.coef = (
            2 * p1[:-1],
            a1,
            0.5 * a2,
            10 * dy - 6 * a1 - 4 * b1 - 1.5 * a2 + 0.5 * b2,
            -15 * dy + 8 * a1 + 7 * b1 + 1.5 * a2 - b2,
            6 * dy - 3 * a1 - 3 * b1 - 0.5 * a2 + 0.5 * b2,
        )
        self.inv_h = 1.0 / h
        self.t_hi = n_int * h
        mid = t[:-1] + h / 2
        with np.errstate(invalid="ignore", divide="ignore"):
            err = np.abs(self._interpolate(mid) / (2 * special.stdtr(nu, -mid)) - 1)
        self.max_error = float(np.max(err))
        self.ok = bool(np.all(err <= rtol))

    def _interpolate(self, t, out=None):
        u = t * self.inv_h
        with np.errstate(invalid="ignore"):
            i = u.astype(np.intp)
        s = u - i
        c0, c1, c2, c3, c4, c5 = (np.take(c, i, mode="clip") for c in self.coef)
        r = c5 * s
        r += c4
        r *= s
        r += c3
        r *= s
        r += c2
        r *= s
        r += c1
        r *= s
        np.exp(r, out=r)
        return np.multiply(c0, r, out=out)

    def __call__(self, abs_t: np.ndarray, block: int = 16384) -> np.ndarray:
        """Two-sided p-values of a 1-D array of |t| values."""
        out = np.empty(abs_t.shape)
        for a in range(0, abs_t.size, block):
            self._interpolate(abs_t[a : a + block], out=out[a : a + block])
        beyond = ~(abs_t < self.t_hi)
        if beyond.any():
            out[beyond] = 2 * special.stdtr(self.nu, -abs_t[beyond])
        return out


#: a finite df shared by at least this many t-statistics is evaluated through _TwoSidedTTail
T_TABLE_MIN_SIZE = 20000

_T_TABLES: dict[float, _TwoSidedTTail] = {}


def _t_table(nu: float) -> _TwoSidedTTail | None:
    """The interpolation table for nu (cached), or None where it does not apply."""
    if not (np.isfinite(nu) and nu > 0) or (nu <= 2 and nu == int(nu)):
        return None  # df 1 and 2 have cheap closed forms in stdtr
    table = _T_TABLES.get(nu)
    if table is None:
        table = _TwoSidedTTail(nu)
        if len(_T_TABLES) > 64:
            _T_TABLES.clear()
        _T_TABLES[nu] = table
    return table if table.ok else None


def _t_sf2_exact(abs_t, df):
    out = np.empty(np.broadcast_shapes(np.shape(abs_t), np.shape(df)))
    abs_t, df = np.broadcast_arrays(abs_t, df)
    inf = np.isinf(df)
    out[inf] = 2 * stats.norm.sf(abs_t[inf])
    fin = ~inf
    out[fin] = 2 * special.stdtr(df[fin], -abs_t[fin])  # stats.t.sf's function, without its checks
    return out


def _t_sf2_shared(abs_t: np.ndarray, nu: float) -> np.ndarray:
    """Two-sided p-values of a 1-D array of |t| sharing the df nu."""
    table = _t_table(float(nu)) if abs_t.size >= T_TABLE_MIN_SIZE else None
    if table is None:
        return _t_sf2_exact(abs_t, nu)
    return table(abs_t)


def _memory_order(values: np.ndarray) -> str:
    """``"F"`` for a column-major array (its columns contiguous), else ``"C"``: the layout the
    p-values of :func:`_t_sf2` keep, so that a column of them is contiguous where the column of t
    was (the values do not depend on it: every p is computed from its own t alone)."""
    return "F" if values.flags.f_contiguous and not values.flags.c_contiguous else "C"


def _t_sf2(t, df):
    """Two-sided p-value 2*P(T > |t|), with df = inf as the normal distribution (R's ``2*pt(-|t|, df)``).

    ``df`` is a scalar or one value per row of ``t``.  Rows are grouped by df: a df shared by many
    t-statistics (all of them when no value is missing and the prior df is common) goes through the
    interpolation table of :class:`_TwoSidedTTail` (same numbers as ``stats.t.sf`` to ~1e-12
    relative, about ten times faster), the others through ``stats.t.sf``.  The p-values keep the
    layout of ``t`` (column-major in, column-major out).
    """
    t = np.abs(np.asarray(t, dtype=np.float64))
    df = np.asarray(df, dtype=np.float64)
    if df.ndim == 0 or (df.size and df.min() == df.max()):
        nu = float(df.flat[0]) if df.size else float(df)
        if t.ndim == 0:
            return _t_sf2_exact(t, nu)
        order = _memory_order(t)
        return _t_sf2_shared(t.ravel(order=order), nu).reshape(t.shape, order=order)
    if df.ndim != 1 or t.ndim != 2 or df.size != t.shape[0]:
        return _t_sf2_exact(t, np.reshape(df, df.shape + (1,) * (t.ndim - df.ndim)))
    values, inverse, counts = np.unique(df, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    shared = counts * t.shape[1] >= T_TABLE_MIN_SIZE
    out = np.empty(t.shape, order=_memory_order(t))
    rest = ~shared[inverse]
    if rest.any():
        out[rest] = _t_sf2_exact(t[rest], df[rest][:, None])
    if shared.any():
        rows = np.flatnonzero(~rest)
        rows = rows[np.argsort(inverse[rows], kind="stable")]
        bounds = np.flatnonzero(np.diff(inverse[rows])) + 1
        for group in np.split(rows, bounds):
            nu = values[inverse[group[0]]]
            out[group] = _t_sf2_shared(t[group].ravel(), nu).reshape(group.size, t.shape[1])
    return out
