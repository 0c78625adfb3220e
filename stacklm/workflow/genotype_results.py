"""The results of a genotype analysis (rule moderate): the SNP columns (chromosome, position,
alleles, counted allele, MAF, call rate, n) and the GWAS-scale effect ``beta_snp``, ``se_snp`` of
the counted allele, added to the moderate step's results and top table."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from stacklm.genotype.gwas import gwas_from_stacked
from stacklm.workflow.analysis_steps import moderate_step
from stacklm.workflow.genotype_steps import SNP_COLUMNS, read_snp_table

#: a stacked fit whose residual standard deviation is below this has a constant dosage on the
#: analysis' called samples (a dosage that varies has sigma >= ~1 / sqrt(n) > 1e-4): no GWAS effect
CONSTANT_SIGMA = 1e-8

_log = logging.getLogger("stacklm")


def gwas_phenotype(test, design_columns) -> tuple[str | None, str]:
    """The design column whose GWAS effects (beta_snp, se_snp) an analysis reports, or None with
    the reason: the analysis must test exactly one column of its design (not a contrast, not the
    intercept)."""
    test = list(test)
    if len(test) != 1:
        return (
            None,
            f"the analysis tests {len(test)} columns jointly (an F test); beta_snp needs one",
        )
    name = test[0]
    if name not in list(design_columns):
        return None, f"{name!r} is a contrast, not a design column; beta_snp needs a design column"
    if name in ("(Intercept)", "Intercept"):
        return None, "the intercept is not a phenotype"
    return name, ""


def snp_result_columns(
    table: pd.DataFrame, fit, snps: pd.DataFrame, test, log: logging.Logger = _log
) -> tuple[pd.DataFrame, dict]:
    """Add the SNP columns to a results table (before its final five columns, the results
    contract's place for new columns), and say what they are for summary.json.

    Columns: ``chromosome, position, allele1, allele2, counted_allele`` (the .bim's fields; the
    counted allele's letter), ``maf, call_rate`` (QC statistics on all samples of the .fam), ``n``
    (samples of this analysis with a call, ``df_residual + rank`` of the SNP's fit), and, when the
    analysis tests one design column (the phenotype), ``beta_snp, se_snp``: the coefficient of the
    dosage and its standard error in ``lm(phenotype ~ dosage + other design columns)`` on those
    samples (:func:`stacklm.genotype.gwas.gwas_from_stacked`, exact, from the stacked estimate,
    stdev_unscaled, sigma and df_residual; NaN where the dosage is constant on the analysis'
    called samples).  ``fit``: the merged, un-moderated chunk fit (its design columns).
    """
    ids = np.asarray(table["feature_id"].astype(str).to_numpy(), dtype=object)
    known = np.asarray(snps["feature_id"].astype(str).to_numpy(), dtype=object)
    if not (known.size == ids.size and np.array_equal(known, ids)):  # else match by id
        # object arrays: pandas' Arrow-backed string isin takes seconds at 10^6 ids
        where = pd.Index(known).get_indexer(ids)
        missing = where < 0
        if missing.any():
            raise ValueError(
                f"{int(missing.sum())} results features are not SNPs of snps.tsv.gz (e.g. "
                f"{ids[missing][0]}); re-run the normalize step"
            )
        snps = snps.iloc[where]
    snps = snps.reset_index(drop=True)
    rank = np.isfinite(fit.coefficients).sum(axis=1)
    df = table["df_residual"].to_numpy(dtype=float)
    new: dict[str, np.ndarray] = {c: snps[c].to_numpy() for c in SNP_COLUMNS}  # in table order
    new["n"] = (df + rank).astype(np.int64)
    phenotype, reason = gwas_phenotype(test, fit.coef_names)
    info: dict = {
        "n_snps": int(len(table)),
        "columns": [*SNP_COLUMNS, "n"],
        "maf_call_rate": "QC statistics on all samples of the .fam (before the analysis' subset)",
        "n": "samples of this analysis with a call (df_residual + rank)",
    }
    if phenotype is not None:
        sigma = table["sigma"].to_numpy(dtype=float)
        gw = gwas_from_stacked(
            table[f"estimate_{phenotype}"].to_numpy(dtype=float),
            table[f"stdev_unscaled_{phenotype}"].to_numpy(dtype=float),
            sigma,
            df,
        )
        constant = ~(sigma > CONSTANT_SIGMA)
        new["beta_snp"] = np.where(constant, np.nan, gw["beta_snp"])
        new["se_snp"] = np.where(constant, np.nan, gw["se_snp"])
        design = np.asarray(fit.design) if fit.design is not None else np.zeros((0, 0))
        ones = {
            n for j, n in enumerate(fit.coef_names) if design.size and (design[:, j] == 1).all()
        }
        others = [c for c in fit.coef_names if c != phenotype and c not in ones]
        rhs = " + ".join(["dosage", *others]) + ("" if ones else " - 1")
        info["beta_snp"] = {
            "phenotype": phenotype,
            "model": f"lm({phenotype} ~ {rhs}) per SNP on its called samples (the other design "
            "columns as covariates)",
            "derived_from": "the stacked fit dosage ~ design: beta_snp = b / (sigma^2 df s^2 + b^2),"
            " se_snp = sigma s / (sigma^2 df s^2 + b^2) (b = estimate, s = stdev_unscaled of "
            "the phenotype; README, SNP genotypes)",
            "n_constant": int(np.sum(constant)),
        }
        info["columns"] += ["beta_snp", "se_snp"]
    else:
        info["beta_snp"] = None
        info["beta_snp_reason"] = reason
        log.info("no beta_snp / se_snp: %s", reason)
    at = list(table.columns).index("statistic")
    out = pd.concat(
        [table.iloc[:, :at], pd.DataFrame(new, index=table.index), table.iloc[:, at:]], axis=1
    )
    return out, info


def genotype_moderate_step(snps_path, *args, **kwargs):
    """:func:`stacklm.workflow.analysis_steps.moderate_step` for a genotype analysis: the same
    moderation and tests, with :func:`snp_result_columns` added to the results and top table and
    a ``genotype`` entry in summary.json (QC counts, counted allele, beta_snp's model)."""
    snps = read_snp_table(snps_path)
    log = kwargs.get("log", _log)

    def extend(table, fit, spec, normalized):
        table, info = snp_result_columns(table, fit, snps, spec.test, log=log)
        geno = dict(normalized.get("genotype") or {})
        geno.update(info)
        geno["moderation"] = spec.moderation.method
        return table, {"genotype": geno}

    return moderate_step(*args, extend=extend, **kwargs)
