"""The fit object (limma's ``MArrayLM``) that flows from ``lm_fit`` through ``contrasts_fit`` and
``e_bayes`` to ``top_table``."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class LinearModelFit:
    """The fit object passed between :func:`lm_fit`, :func:`contrasts_fit`, ``e_bayes`` and ``top_table``.

    Mirrors limma's ``MArrayLM``: per-feature arrays have one row per feature (input order).
    ``cov_coefficients`` is the unscaled covariance ``(X'X)^-1`` of the full design (limma's
    ``cov.coefficients``), transformed by ``contrasts_fit``.  Moderation fields are ``None`` until
    ``e_bayes`` fills them.
    """

    coefficients: np.ndarray  # G x k
    stdev_unscaled: np.ndarray  # G x k
    sigma: np.ndarray  # G
    df_residual: np.ndarray  # G
    amean: np.ndarray  # G
    cov_coefficients: np.ndarray  # k x k
    coef_names: list[str]
    feature_ids: np.ndarray
    design: np.ndarray | None = None  # n x p, the design the fit was made with
    design_names: list[str] | None = None
    contrasts: np.ndarray | None = None  # p x k once contrasts_fit has run
    # filled by e_bayes
    s2_prior: np.ndarray | float | None = None
    df_prior: np.ndarray | float | None = None
    s2_post: np.ndarray | None = None
    df_total: np.ndarray | None = None
    var_prior: np.ndarray | None = None
    proportion: float | None = None
    t: np.ndarray | None = None
    p_value: np.ndarray | None = None
    lods: np.ndarray | None = None
    F: np.ndarray | None = None
    F_p_value: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return int(self.coefficients.shape[0])

    def coef_index(self, names: str | Sequence[str]) -> list[int]:
        """Column positions of coefficient (or contrast) names; a clear error lists the valid ones."""
        if isinstance(names, str):
            names = [names]
        out = []
        for name in names:
            if name not in self.coef_names:
                raise KeyError(
                    f"coefficient {name!r} is not in the fit; available: {', '.join(self.coef_names)}"
                )
            out.append(self.coef_names.index(name))
        return out

    def replace(self, **changes) -> LinearModelFit:
        return dataclasses.replace(self, **changes)

    def subset_coefficients(self, idx: Sequence[int]) -> LinearModelFit:
        """``fit[, j]`` as limma's ``[.MArrayLM``: the per-coefficient fields (coefficients,
        stdev.unscaled, cov.coefficients, t, p.value, lods, var.prior) subset to the columns
        ``idx``; the F statistic, which depends on all of them, is dropped."""
        idx = list(idx)

        def take(a):
            return None if a is None else np.asarray(a)[:, idx]

        return self.replace(
            coefficients=self.coefficients[:, idx],
            stdev_unscaled=take(self.stdev_unscaled),
            cov_coefficients=None
            if self.cov_coefficients is None
            else self.cov_coefficients[np.ix_(idx, idx)],
            coef_names=[self.coef_names[i] for i in idx],
            t=take(self.t),
            p_value=take(self.p_value),
            lods=take(self.lods),
            var_prior=None if self.var_prior is None else np.asarray(self.var_prior)[idx],
            F=None,
            F_p_value=None,
        )
