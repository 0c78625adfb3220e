r"""GWAS-scale SNP effects from the stacked fit ``dosage_j ~ phenotype + covariates``.

The workflow fits, for every SNP j, the dosage (copies of the counted allele) on the design
``D = [1, y, C]`` (phenotype y, covariates C), on the samples where SNP j is called (set O_j), and
gets the phenotype's coefficient ``b_j``, its ``stdev_unscaled`` ``s_j``, the residual standard
deviation ``sigma_j`` and ``df_j = n_j - rank(D_{O_j})``.  A GWAS reports instead the coefficient
of the dosage in ``lm(y ~ x_j + C)`` on the same samples (R; plink2 ``--glm`` for a quantitative
trait).  Both are exact functions of the stacked fit.

Derivation (Frisch-Waugh-Lovell).  On O_j let ``Z = [1, C]``, ``P`` the projection off ``span(Z)``,
``ỹ = P y``, ``x̃ = P x`` and

    S_yy = ỹ'ỹ   (residual sum of squares of the phenotype on the covariates, on O_j),
    S_xx = x̃'x̃   (the same for the dosage),        S_xy = x̃'ỹ.

Stacked model ``x ~ y + C``:  ``b = S_xy / S_yy``,  ``s² = [(D'D)^{-1}]_yy = 1 / S_yy``, and
``RSS_x = S_xx - S_xy² / S_yy = sigma² df``.  Hence, from the stacked fit alone,

    S_yy = 1 / s²,     S_xy = b / s²,     S_xx = sigma² df + b² / s².

GWAS model ``y ~ x + C`` (same samples, same column space, so the same ``df``):

    beta_snp = S_xy / S_xx = b S_yy / S_xx = b / (sigma² df s² + b²),
    RSS_y    = S_yy - S_xy² / S_xx = S_yy sigma² df / S_xx,
    se_snp   = sqrt(RSS_y / (df S_xx)) = sigma sqrt(S_yy) / S_xx = sigma s / (sigma² df s² + b²),
    t        = beta_snp / se_snp = b / (s sigma)        (the stacked t: the partial correlation
                                                          of x and y given C is symmetric),
    p        = 2 P(T_df > |t|).

That is, ``beta_snp = b * S_yy / S_xx`` -- the stacked coefficient times the ratio of the
phenotype's to the dosage's residual variance given the covariates -- and ``se_snp = beta_snp / t``.
For a complete SNP, ``S_yy`` is one number shared by all complete SNPs; for a SNP with missing
calls it is the phenotype's residual sum of squares on that SNP's called samples, which the
stacked fit's ``stdev_unscaled`` already holds (``1 / s²``).  :func:`phenotype_rss` computes the
same numbers from the phenotype and covariates directly (for a check, or when a stacked fit is
given without its ``stdev_unscaled``): per missingness pattern as a rank-``k`` downdate of the full
data's QR, vectorised over SNPs.  The t and p need no phenotype variance at all.

Case/control phenotypes coded 0/1 give the linear probability model (``lm(cc ~ x + C)``, the
shared snpStats reference), not logistic regression (plink2 ``--glm`` uses logistic regression for
case/control and is compared here on a quantitative trait only).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.special import stdtr

from .plink import MISSING_INT8


def _observed(genotypes: np.ndarray) -> np.ndarray:
    g = np.asarray(genotypes)
    if g.ndim == 1:
        g = g[None, :]
    return ~np.isnan(g) if g.dtype.kind == "f" else g != MISSING_INT8


def phenotype_rss(
    phenotype, covariates, observed: np.ndarray | None = None, rcond: float = 1e-10
) -> np.ndarray:
    """Residual sum of squares of ``phenotype`` on ``[1, covariates]`` on each SNP's called samples.

    ``phenotype``: n values; ``covariates``: n x q matrix *without* the intercept column (it is
    added; may have 0 columns); ``observed``: SNPs x n boolean mask of called samples (or a
    genotype block, float with NaN / int8 with -127).  Returns one value per SNP (one value,
    shape (1,), without ``observed``).

    Method: with ``W = [1, C, y] = Q R`` (thin QR on all n samples), ``y`` has coordinates
    ``(u, v)`` in Q with ``v = R[-1, -1]``; the ``Q_z u`` part lies in ``span(Z)`` on every subset,
    so on a subset O the residual is that of ``v q_y``: ``S_yy(O) = v² (A_yy - A_yz A_zz^+ A_zy)``
    with ``A = Q_O' Q_O = I - Q_M' Q_M`` (M = the missing samples; the observed ones when they are
    fewer).  The Gram sums over M are one sparse product for all SNPs; ``A_zz^+`` is a batched
    pseudo-inverse (``rcond``), which drops a covariate column that is all zero on O as R's
    ``lm`` does.
    """
    y = np.asarray(phenotype, dtype=np.float64).ravel()
    n = y.size
    C = np.asarray(covariates, dtype=np.float64).reshape(n, -1)
    W = np.column_stack([np.ones(n), C, y])
    if not np.all(np.isfinite(W)):
        raise ValueError("phenotype and covariates must be finite")
    Q, R = np.linalg.qr(W)
    if np.abs(np.diag(R)).min() <= 1e-7 * np.abs(np.diag(R)).max():
        raise ValueError("phenotype and covariates are linearly dependent on the full sample set")
    v2 = R[-1, -1] ** 2
    if observed is None:
        return np.array([v2])
    obs = np.asarray(observed)
    if obs.dtype != bool:
        obs = _observed(obs)
    if obs.ndim == 1:
        obs = obs[None, :]
    if obs.shape[1] != n:
        raise ValueError(f"observed has {obs.shape[1]} columns, the phenotype {n} values")
    G = obs.shape[0]
    out = np.full(G, v2)
    n_obs = obs.sum(axis=1)
    partial = np.flatnonzero(n_obs < n)
    if partial.size == 0:
        return out
    k = W.shape[1]
    iu = np.triu_indices(k)
    # products q_i q_i' of each sample's Q row (upper triangle), one row per sample
    F = (Q[:, iu[0]] * Q[:, iu[1]]).astype(np.float64)
    few_missing = n_obs[partial] >= n - n_obs[partial]
    A = np.empty((partial.size, k, k))
    for flag in (True, False):
        rows = partial[few_missing == flag]
        if rows.size == 0:
            continue
        sel = ~obs[rows] if flag else obs[rows]
        S = sparse.csr_matrix(sel.astype(np.float64)) @ F  # rows x k(k+1)/2
        M = np.zeros((rows.size, k, k))
        M[:, iu[0], iu[1]] = S
        M[:, iu[1], iu[0]] = S
        where = np.flatnonzero(few_missing == flag)
        A[where] = (np.eye(k) - M) if flag else M
    Azz, Azy, Ayy = A[:, :-1, :-1], A[:, :-1, -1], A[:, -1, -1]
    pinv = np.linalg.pinv(Azz, rcond=rcond, hermitian=True)
    quad = np.einsum("gi,gij,gj->g", Azy, pinv, Azy)
    rss = v2 * (Ayy - quad)
    rss[n_obs[partial] == 0] = np.nan
    out[partial] = rss
    return out


def gwas_from_stacked(
    estimate, stdev_unscaled, sigma, df_residual, phenotype_ss=None
) -> dict[str, np.ndarray]:
    """``beta_snp, se_snp, t, p_value, df_residual`` of ``lm(y ~ x_j + C)`` from the stacked fit.

    Arrays per SNP: the phenotype's coefficient ``b`` in ``x_j ~ y + C``, its ``stdev_unscaled``
    ``s``, the fit's ``sigma`` and ``df_residual``.  ``phenotype_ss``: ``S_yy`` per SNP (see
    :func:`phenotype_rss`); default ``1 / s²``, the same number.  Formulas in the module docstring.
    NaN where the stacked fit has no estimate, where ``df_residual`` is 0, or where
    ``S_xx = sigma² df + b² S_yy`` is 0.
    """
    b = np.asarray(estimate, dtype=np.float64)
    s = np.asarray(stdev_unscaled, dtype=np.float64)
    sg = np.asarray(sigma, dtype=np.float64)
    df = np.asarray(df_residual, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        syy = 1.0 / (s * s) if phenotype_ss is None else np.asarray(phenotype_ss, dtype=np.float64)
        sxy = b * syy
        sxx = sg * sg * df + b * sxy
        beta = sxy / sxx
        se = sg * np.sqrt(syy) / sxx
        t = b / (s * sg) if phenotype_ss is None else b * np.sqrt(syy) / sg
        bad = ~(sxx > 0) | ~(df > 0) | ~np.isfinite(t)
        beta, se, t = (np.where(bad, np.nan, a) for a in (beta, se, t))
        p = np.where(
            bad, np.nan, 2.0 * stdtr(np.where(bad, 1.0, df), -np.abs(np.where(bad, 0.0, t)))
        )
    return {"beta_snp": beta, "se_snp": se, "t": t, "p_value": p, "df_residual": df}


def constant_dosage(genotypes: np.ndarray) -> np.ndarray:
    """SNPs whose dosage takes a single value (or none) among the called samples.

    (Minimum = maximum of the called values, one pass over the block.)  R's ``lm(y ~ x + C)`` then
    reports NA for x; the stacked fit's estimate for such a row is rounding noise, so
    :func:`gwas_effects` sets NaN.  :func:`stacklm.genotype.qc.snp_qc`'s ``monomorphic`` column is
    the same mask for hard calls.
    """
    g = np.asarray(genotypes)
    if g.ndim == 1:
        g = g[None, :]
    if g.dtype.kind == "f":  # fmin/fmax skip NaN (all-NaN rows give NaN: not hi > lo)
        lo, hi = np.fmin.reduce(g, axis=1), np.fmax.reduce(g, axis=1)
    elif g.dtype == np.int8:  # missing (-127) is the smallest int8 and, as uint8, 129 > 2
        lo, hi = g.view(np.uint8).min(axis=1).astype(np.int16), g.max(axis=1).astype(np.int16)
        lo[lo > 2] = 127
    else:
        raise ValueError("genotypes must be float (NaN missing) or int8 (-127 missing)")
    return ~(hi > lo)


def gwas_effects(
    fit,
    coef: str | int = 1,
    *,
    phenotype=None,
    covariates=None,
    genotypes: np.ndarray | None = None,
    constant: np.ndarray | None = None,
) -> pd.DataFrame:
    """GWAS effect of each SNP's counted allele, ``lm(phenotype ~ dosage_j + covariates)``, exactly.

    ``fit``: the stacked :class:`stacklm.LinearModelFit` of the dosage rows on
    ``[1, phenotype, covariates]`` (``lm_fit(dosage, design)``), or a mapping with arrays
    ``estimate, stdev_unscaled, sigma, df_residual`` (one value per SNP).  ``coef``: the
    phenotype's column name or position in the fit (position 1 by default: the column after the
    intercept).  Moderation does not enter: the GWAS statistics use the ordinary ``sigma`` and
    ``df_residual`` (``moderation.method: none``), whatever ``e_bayes`` did to the fit.

    Optional: ``genotypes`` (the SNP block the fit was made from, SNPs x samples, float with NaN or
    int8) marks SNPs whose dosage is constant on their called samples as NaN (as R's NA), or
    ``constant`` gives that mask (e.g. ``snp_qc(...)["monomorphic"]``); SNPs that QC dropped as
    monomorphic need neither.  With
    ``phenotype`` and ``covariates`` too (covariates without the intercept, as in the design),
    ``S_yy`` is computed by :func:`phenotype_rss` on each SNP's called samples instead of taken
    from ``stdev_unscaled`` (same numbers to rounding).

    Returns a DataFrame (index = the fit's feature ids) with ``beta_snp, se_snp, t, p_value,
    df_residual``.  The derivation is in the module docstring.
    """
    if hasattr(fit, "coefficients"):
        j = fit.coef_index(coef)[0] if isinstance(coef, str) else int(coef)
        b = fit.coefficients[:, j]
        s = fit.stdev_unscaled[:, j]
        sg, df = fit.sigma, fit.df_residual
        index = fit.feature_ids
    else:
        b, s = np.asarray(fit["estimate"]), np.asarray(fit["stdev_unscaled"])
        sg, df = np.asarray(fit["sigma"]), np.asarray(fit["df_residual"])
        index = fit.get("feature_ids", None)
    syy = None
    if phenotype is not None or covariates is not None:
        if phenotype is None or covariates is None or genotypes is None:
            raise ValueError("phenotype_rss needs phenotype, covariates and genotypes together")
        syy = phenotype_rss(phenotype, covariates, genotypes)
    out = gwas_from_stacked(b, s, sg, df, syy)
    if constant is not None or genotypes is not None:
        const = np.asarray(constant, bool) if constant is not None else constant_dosage(genotypes)
        if const.shape != np.asarray(b).shape:
            raise ValueError("genotypes / constant must have one row per SNP of the fit")
        for key in ("beta_snp", "se_snp", "t", "p_value"):
            out[key] = np.where(const, np.nan, out[key])
    return pd.DataFrame(out, index=None if index is None else pd.Index(index, name="feature_id"))
