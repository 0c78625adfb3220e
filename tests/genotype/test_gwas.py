"""stacklm.genotype.gwas: lm(phenotype ~ dosage + covariates) derived from the stacked fit
dosage ~ phenotype + covariates (stacklm.lm_fit, ordinary statistics), against

- R 4.2.2 ``summary(lm(y ~ x + sex + region))`` per SNP (tests/data/genotype/lm_reference.tsv.gz,
  make_reference.R) for the case/control cc (the shared snpStats reference's model) and a
  simulated quantitative trait qt, x = copies of the .bim's allele 2: beta, se, t, p, df;
- plink2 v2.00a3.5 ``--glm omit-ref hide-covar`` on qt with sex + region dummies (counted allele =
  the .bim's allele 1): BETA, SE, T_STAT to every printed digit; P to the printed digits except
  where plink2's own t tail (~1e-8 relative) falls on the other side of a rounding boundary.

Measured: max relative difference to R 7.3e-10 (beta, t; at |t| = 1.2e-4, where the coefficient
itself is ill-conditioned: |difference in t| <= 1e-13), 2.7e-14 (se), 1.1e-12 (p); for |t| > 1e-3
all <= 1.3e-11.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import TEST_DATA, read_table

from stacklm import lm_fit
from stacklm.genotype import gwas, plink, qc

DATA = TEST_DATA / "genotype"
BED = DATA / "testdata_chr16_22.bed"
RTOL = 1e-8


def rel_diff(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert np.array_equal(np.isnan(a), np.isnan(b))
    ok = ~np.isnan(b)
    return float(np.max(np.abs(a[ok] - b[ok]) / np.abs(b[ok])))


@pytest.fixture(scope="module")
def data():
    fam = plink.read_fam(BED)
    bim = plink.read_bim(BED)
    sheet = read_table(DATA / "samples.tsv", dtype={"sample_id": str}).set_index("sample_id")
    idx = plink.sample_index(fam, sheet.index)
    # R's treatment contrasts: sexMale, region levels 2..10
    cov = pd.get_dummies(sheet[["sex", "region"]], drop_first=True, dtype=float).to_numpy()
    ref = read_table(DATA / "lm_reference.tsv.gz", dtype={"feature_id": str})
    assert list(ref["feature_id"]) == list(bim["snp_id"])
    return {"bim": bim, "sheet": sheet, "idx": idx, "cov": cov, "ref": ref}


def stacked(data, phenotype: str, counted_allele: int, dtype=np.float64):
    g = plink.read_genotypes(
        BED, counted_allele=counted_allele, sample_index=data["idx"], dtype=dtype
    )
    y = data["sheet"][phenotype].to_numpy(dtype=np.float64)
    design = np.column_stack([np.ones(y.size), y, data["cov"]])
    gf = plink.int8_to_float(g) if g.dtype == np.int8 else g
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant rows: 0/0 in lm_fit's sigma
        fit = lm_fit(gf, design, feature_ids=data["bim"]["snp_id"].to_numpy())
    return fit, g, y


@pytest.mark.parametrize("phenotype", ["cc", "qt"])
def test_equals_r_lm(data, phenotype):
    fit, g, y = stacked(data, phenotype, counted_allele=2)
    eff = gwas.gwas_effects(fit, 1, genotypes=g)
    ref = data["ref"]
    assert list(eff.index) == list(ref["feature_id"])
    for col, rcol in [("beta_snp", "beta_snp"), ("se_snp", "se_snp"), ("t", "t"), ("p_value", "p")]:
        assert rel_diff(eff[col], ref[f"{phenotype}_{rcol}"]) <= RTOL, col
    ok = ref[f"{phenotype}_t"].notna().to_numpy()
    np.testing.assert_array_equal(eff["df_residual"][ok], ref[f"{phenotype}_df_residual"][ok])
    # the t is the stacked fit's ordinary t, coefficient / (stdev_unscaled * sigma)
    with np.errstate(invalid="ignore", divide="ignore"):
        t_stacked = fit.coefficients[:, 1] / (fit.stdev_unscaled[:, 1] * fit.sigma)
    np.testing.assert_allclose(eff["t"][ok], t_stacked[ok], rtol=1e-13)
    # away from t = 0 (where the coefficient is ill-conditioned) the agreement is much closer
    big = ok & (np.abs(ref[f"{phenotype}_t"].to_numpy()) > 1e-3)
    assert rel_diff(eff["t"][big], ref[f"{phenotype}_t"][big]) <= 1e-10


def test_counted_allele_flips_signs_and_int8_path(data):
    fit, g, y = stacked(data, "qt", counted_allele=1, dtype=np.int8)
    eff = gwas.gwas_effects(fit, 1, genotypes=g)
    ref = data["ref"]
    assert rel_diff(eff["beta_snp"], -ref["qt_beta_snp"]) <= RTOL
    assert rel_diff(eff["t"], -ref["qt_t"]) <= RTOL
    assert rel_diff(eff["se_snp"], ref["qt_se_snp"]) <= RTOL
    assert rel_diff(eff["p_value"], ref["qt_p"]) <= RTOL


def test_phenotype_rss_path_and_arrays(data):
    fit, g, y = stacked(data, "cc", counted_allele=2)
    syy = gwas.phenotype_rss(y, data["cov"], g)
    ok = np.isfinite(fit.stdev_unscaled[:, 1])
    np.testing.assert_allclose(syy[ok], 1.0 / fit.stdev_unscaled[ok, 1] ** 2, rtol=1e-12)
    # direct least squares on a few SNPs' called samples (some with many missing calls)
    n_obs = (~np.isnan(g)).sum(axis=1)
    for j in [int(np.argmax(n_obs == 400)), int(np.argmin(np.where(n_obs > 0, n_obs, 999)))] + [
        int(k) for k in np.flatnonzero((n_obs > 150) & (n_obs < 390))[:5]
    ]:
        o = ~np.isnan(g[j])
        Z = np.column_stack([np.ones(o.sum()), data["cov"][o]])
        r = y[o] - Z @ np.linalg.lstsq(Z, y[o], rcond=None)[0]
        assert syy[j] == pytest.approx(r @ r, rel=1e-12)
    assert np.isnan(gwas.phenotype_rss(y, data["cov"], np.zeros((1, y.size), dtype=bool))[0])
    both = gwas.gwas_effects(fit, 1, genotypes=g, phenotype=y, covariates=data["cov"])
    one = gwas.gwas_effects(fit, 1, genotypes=g)
    for col in ("beta_snp", "se_snp", "t", "p_value"):
        assert rel_diff(both[col], one[col]) <= 1e-12
    arrays = {
        "estimate": fit.coefficients[:, 1],
        "stdev_unscaled": fit.stdev_unscaled[:, 1],
        "sigma": fit.sigma,
        "df_residual": fit.df_residual,
    }
    plain = gwas.gwas_effects(arrays)
    mono = gwas.constant_dosage(g)
    np.testing.assert_array_equal(mono, qc.snp_qc(g)["monomorphic"])
    np.testing.assert_array_equal(
        mono, gwas.constant_dosage(np.where(np.isnan(g), -127, g).astype(np.int8))
    )
    np.testing.assert_array_equal(plain["t"][~mono], one["t"][~mono])
    pd.testing.assert_frame_equal(gwas.gwas_effects(fit, 1, constant=mono), one)
    by_name = gwas.gwas_effects(
        fit.replace(coef_names=["a", "cc", *fit.coef_names[2:]]), "cc", genotypes=g
    )
    pd.testing.assert_frame_equal(by_name, one)
    with pytest.raises(ValueError, match="together"):
        gwas.gwas_effects(fit, 1, phenotype=y)


def test_equals_plink2_glm_digits(data):
    glm = read_table(DATA / "plink2_glm_qt.tsv.gz", dtype=str, keep_default_na=False)
    bim = data["bim"]
    assert list(glm["ID"]) == list(bim["snp_id"])
    assert (glm["A1"] == bim["allele1"]).all()  # omit-ref: A1 = ALT = the .bim's allele 1
    fit, g, y = stacked(data, "qt", counted_allele=1)
    eff = gwas.gwas_effects(fit, 1, genotypes=g)
    ok = (glm["ERRCODE"] == ".").to_numpy()
    assert ok.sum() == 1709
    np.testing.assert_array_equal((~np.isnan(g[ok])).sum(axis=1), glm["OBS_CT"][ok].astype(int))
    for col, pcol in [("beta_snp", "BETA"), ("se_snp", "SE"), ("t", "T_STAT")]:
        ours = np.array([f"{v:.6g}" for v in eff[col].to_numpy()[ok]])
        np.testing.assert_array_equal(ours, glm[pcol].to_numpy()[ok])
    p = eff["p_value"].to_numpy()[ok]
    printed = glm["P"].to_numpy()[ok]
    same = np.array([f"{v:.6g}" for v in p]) == printed
    assert same.mean() > 0.99  # measured: 1,701 of 1,709
    # the others: one unit in the 6th digit, our (= R's) value within 1e-7 of a rounding boundary
    pv = printed.astype(float)
    unit = 10.0 ** (np.floor(np.log10(np.abs(pv))) - 5)
    assert np.all(np.abs(p - pv) <= 0.5 * unit + 1e-7 * p)
    # plink2 has no estimate where a region is absent among the called samples (VIF_INFINITE)
    # or the SNP is constant; R drops the empty region column, as the stacked fit does
    vif = (glm["ERRCODE"] == "VIF_INFINITE").to_numpy()
    assert np.isfinite(eff["t"].to_numpy()[vif]).all()
    const = (glm["ERRCODE"] == "CONST_OMITTED_ALLELE").to_numpy()
    assert np.isnan(eff["t"].to_numpy()[const]).all()
