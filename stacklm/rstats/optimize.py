"""R's ``optimize`` (one-dimensional minimisation, ``Brent_fmin`` in R's
src/library/stats/src/optimize.c), ported line by line.

Why a port and not ``scipy.optimize.minimize_scalar(method="bounded")``: scipy's bounded Brent is a
different variant (other stopping rule, start and step bookkeeping), so its iterates and its final
abscissa differ from R's.  R's default tolerance is coarse (``.Machine$double.eps^0.25`` ~ 1.2e-4),
so only the same sequence of evaluation points gives R's answer to the last digits; limma's
``fitFDistUnequalDF1`` takes its prior df from this abscissa.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

from stacklm.rstats.basic import DBL_EPSILON

_DBL_MAX = sys.float_info.max
#: R's default ``tol = .Machine$double.eps^0.25`` (= 2^-13 exactly)
DEFAULT_TOL = DBL_EPSILON**0.25


@dataclass
class OptimizeResult:
    """``optimize``'s list: the abscissa found (``minimum``, or ``maximum`` with
    ``maximum=True``, both names refer to it) and ``objective``, f at it; ``evaluations`` holds the
    points where Brent's method evaluated f, in order (R does not return them; kept for tests)."""

    x: float
    objective: float
    maximum_search: bool = False
    evaluations: list[float] = field(default_factory=list)

    @property
    def minimum(self) -> float:
        return self.x

    @property
    def maximum(self) -> float:
        return self.x


def brent_fmin(ax: float, bx: float, f: Callable[[float], float], tol: float) -> float:
    """R's C ``Brent_fmin(ax, bx, f, info, tol)``: the same arithmetic in the same order."""
    c = (3.0 - math.sqrt(5.0)) * 0.5  # squared inverse of the golden ratio
    eps = math.sqrt(DBL_EPSILON)
    a = ax
    b = bx
    v = a + c * (b - a)
    w = v
    x = v
    d = 0.0
    e = 0.0
    fx = f(x)
    fv = fx
    fw = fx
    tol3 = tol / 3.0
    while True:
        xm = (a + b) * 0.5
        tol1 = eps * abs(x) + tol3
        t2 = tol1 * 2.0
        # stopping criterion
        if abs(x - xm) <= t2 - (b - a) * 0.5:
            break
        p = 0.0
        q = 0.0
        r = 0.0
        if abs(e) > tol1:  # fit a parabola
            r = (x - w) * (fx - fv)
            q = (x - v) * (fx - fw)
            p = (x - v) * q - (x - w) * r
            q = (q - r) * 2.0
            if q > 0.0:
                p = -p
            else:
                q = -q
            r = e
            e = d
        if abs(p) >= abs(q * 0.5 * r) or p <= q * (a - x) or p >= q * (b - x):
            # golden-section step
            e = (b - x) if x < xm else (a - x)
            d = c * e
        else:
            # parabolic-interpolation step
            d = p / q
            u = x + d
            # f must not be evaluated too close to ax or bx
            if u - a < t2 or b - u < t2:
                d = tol1
                if x >= xm:
                    d = -d
        # f must not be evaluated too close to x
        if abs(d) >= tol1:
            u = x + d
        elif d > 0.0:
            u = x + tol1
        else:
            u = x - tol1
        fu = f(u)
        # update a, b, v, w and x
        if fu <= fx:
            if u < x:
                b = x
            else:
                a = x
            v = w
            w = x
            x = u
            fv = fw
            fw = fx
            fx = fu
        else:
            if u < x:
                a = u
            else:
                b = u
            if fu <= fw or w == x:
                v = w
                fv = fw
                w = u
                fw = fu
            elif fu <= fv or v == x or v == w:
                v = u
                fv = fu
    return x


def optimize(
    f: Callable[[float], float],
    interval=None,
    lower: float | None = None,
    upper: float | None = None,
    maximum: bool = False,
    tol: float = DEFAULT_TOL,
) -> OptimizeResult:
    """R's ``optimize(f, interval, lower = min(interval), upper = max(interval), maximum = FALSE,
    tol = .Machine$double.eps^0.25)``.

    As R's ``do_fmin``: a non-finite value of f (NaN, +-inf) is replaced by the largest double (with
    a warning), bounds must be finite with ``lower < upper`` and ``tol > 0``.  ``objective`` is f
    evaluated once more at the returned abscissa, as in R.
    """
    if lower is None:
        lower = min(interval)
    if upper is None:
        upper = max(interval)
    lower = float(lower)
    upper = float(upper)
    tol = float(tol)
    if not math.isfinite(lower):
        raise ValueError("invalid 'xmin' value")
    if not math.isfinite(upper):
        raise ValueError("invalid 'xmax' value")
    if lower >= upper:
        raise ValueError("'xmin' not less than 'xmax'")
    if not math.isfinite(tol) or tol <= 0.0:
        raise ValueError("invalid 'tol' value")
    evaluations: list[float] = []
    sign = -1.0 if maximum else 1.0

    def fcn1(x: float) -> float:
        evaluations.append(x)
        value = sign * float(f(x))
        if not math.isfinite(value):
            warnings.warn("NA/Inf replaced by maximum positive value", stacklevel=3)
            return _DBL_MAX
        return value

    x = brent_fmin(lower, upper, fcn1, tol)
    return OptimizeResult(x, float(f(x)), maximum, evaluations)
