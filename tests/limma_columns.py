"""Map a moderated fit onto the column names of the R reference tables."""

from __future__ import annotations

import numpy as np

from stacklm.limma.ftest import moderated_f


def reference_columns(eb, f_coefs) -> dict[str, np.ndarray]:
    g = eb.sigma.shape
    out = {
        "Amean": eb.amean,
        "sigma": eb.sigma,
        "df.residual": eb.df_residual,
        "s2.post": eb.s2_post,
        "df.total": eb.df_total,
        "s2.prior": np.broadcast_to(eb.s2_prior, g),
        "df.prior": np.broadcast_to(eb.df_prior, g),
    }
    if eb.F is not None:
        out["F.all"] = eb.F
        out["F.all.p.value"] = eb.F_p_value
    for j, c in enumerate(eb.coef_names):
        out[f"coefficients.{c}"] = eb.coefficients[:, j]
        out[f"stdev.unscaled.{c}"] = eb.stdev_unscaled[:, j]
        out[f"t.{c}"] = eb.t[:, j]
        out[f"p.value.{c}"] = eb.p_value[:, j]
        out[f"lods.{c}"] = eb.lods[:, j]
    F, p = moderated_f(eb, f_coefs)
    out["F"] = F
    out["F.p.value"] = p
    return out
