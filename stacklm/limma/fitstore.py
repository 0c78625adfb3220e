"""Fits of row chunks: concatenated in feature order, saved and loaded as ``.npz`` files."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from stacklm.limma.marraylm import LinearModelFit

# --------------------------------------------------------------------------------------------
# chunks
# --------------------------------------------------------------------------------------------
_ROW_FIELDS = ("coefficients", "stdev_unscaled", "sigma", "df_residual", "amean", "feature_ids")


def concat_fits(fits: Sequence[LinearModelFit]) -> LinearModelFit:
    """Stack fits of row chunks (same design) into one fit, in the given order, before moderation."""
    if not fits:
        raise ValueError("no fits to concatenate")
    first = fits[0]
    for f in fits[1:]:
        if f.coef_names != first.coef_names or not np.array_equal(
            f.cov_coefficients, first.cov_coefficients
        ):
            raise ValueError("fits to concatenate must come from the same design and coefficients")
        if f.t is not None:
            raise ValueError("concatenate fits before moderation (e_bayes is global)")
    rows = {name: np.concatenate([getattr(f, name) for f in fits]) for name in _ROW_FIELDS}
    return first.replace(**rows)


def save_fit(fit: LinearModelFit, path) -> None:
    """Write the un-moderated fit as a compact binary ``.npz`` (float64 arrays + names)."""
    np.savez(
        path,
        coefficients=fit.coefficients,
        stdev_unscaled=fit.stdev_unscaled,
        sigma=fit.sigma,
        df_residual=fit.df_residual,
        amean=fit.amean,
        cov_coefficients=fit.cov_coefficients,
        coef_names=np.array(fit.coef_names, dtype=str),
        feature_ids=np.asarray(fit.feature_ids).astype(str),
        design=fit.design if fit.design is not None else np.zeros((0, 0)),
    )


def load_fit(path) -> LinearModelFit:
    """Read a fit written by :func:`save_fit`."""
    with np.load(path, allow_pickle=False) as z:
        design = z["design"]
        names = [str(s) for s in z["coef_names"]]
        return LinearModelFit(
            coefficients=z["coefficients"],
            stdev_unscaled=z["stdev_unscaled"],
            sigma=z["sigma"],
            df_residual=z["df_residual"],
            amean=z["amean"],
            cov_coefficients=z["cov_coefficients"],
            coef_names=names,
            feature_ids=z["feature_ids"],
            design=design if design.size else None,
            design_names=names,
        )
