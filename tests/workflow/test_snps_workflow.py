"""SNP genotypes in the workflow (issue 18): PLINK .bed input, plink2's QC, ordinary association
statistics, beta_snp / se_snp, the Manhattan plot.  Two real Snakemake runs, started together:

- ``example``: config/snps.yaml on the embedded example (resources/example_snps: 1,200 people,
  4,000 SNPs, case/control status with 12 causal SNPs, geography as a confounder), every default
  target: QC counts and kept SNPs as plink2 v2.00a3.5 gives them with the same filters
  (tests/data/snps_workflow), results against stacklm.genotype and stacklm.lm_fit called directly
  on the .bed, the causal SNPs found, the Manhattan plot;
- ``snpstats``: snpStats' testdata, chromosomes 16-22 (tests/data/genotype: 1,986 SNPs x 400
  subjects) with counted_allele 2 and plink2's filters --geno 0.2 --hwe 1e-4 --maf 0.05: the QC
  counts plink2 logs, and per kept SNP beta_snp, se_snp, t, p, df of R's
  ``summary(lm(cc ~ x + sex + region))`` and ``lm(qt ~ x + sex + region)`` (x = copies of allele
  2), and plink2 ``--glm`` on qt (allele 1 counted there: signs flip).

Measured (max relative difference): to R lm on 907 SNPs, beta_snp and t 4.5e-12 (cc) / 3.1e-12
(qt), se_snp 6.7e-15, p 1.8e-13; to the library on the example 0 for estimates, sigma, beta_snp,
se_snp, 3e-16 for t, 8e-15 for p; plink2 --glm: BETA, SE, T_STAT, OBS_CT equal to every printed
digit.  Both runs together take ~50 s on 2 cores.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, TEST_DATA, read_table
from workflow_helpers import write_config

from stacklm import lm_fit
from stacklm.genotype import gwas, plink, qc

EXAMPLE = REPO / "resources" / "example_snps"
GENO = TEST_DATA / "genotype"
REF = TEST_DATA / "snps_workflow"
FINAL_FIVE = ["statistic", "p_value", "fdr", "qvalue", "lfdr"]
SNP_COLUMNS = ["chromosome", "position", "allele1", "allele2", "counted_allele", "maf",
               "call_rate", "n", "beta_snp", "se_snp"]  # fmt: skip


def _command(work, configfile, *targets, cores=1):
    # targets first: --configfile and --quiet take several values and would swallow them
    return [sys.executable, "-m", "snakemake", *targets, "-s", str(REPO / "Snakefile"),
            "--directory", str(work), "--cores", str(cores), "--configfile", str(configfile),
            "--quiet", "all"]  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Both workflow runs, side by side (one core each)."""
    ex = tmp_path_factory.mktemp("snps_example")
    config = yaml.safe_load((REPO / "config" / "snps.yaml").read_text())
    for key in ("matrix", "samples"):
        config[key] = str(REPO / config[key])
    ex_cfg = write_config(ex / "snps.yaml", config)

    st = tmp_path_factory.mktemp("snps_snpstats")
    common = {"formula": "~ {y} + sex + region", "test": "{y}"}
    st_cfg = write_config(
        st / "c.yaml",
        {
            "matrix": str(GENO / "testdata_chr16_22.bed"),
            "samples": str(GENO / "samples.tsv"),
            "genotype": {"counted_allele": 2},
            "filter": {"max_missing": 0.2, "min_hwe_p": 1e-4, "min_maf": 0.05},
            "chunks": 2,
            "analyses": {
                "cc": {
                    "formula": common["formula"].format(y="cc"),
                    "levels": {"cc": [0, 1]},
                    "test": "cc1",
                },
                "qt": {"formula": common["formula"].format(y="qt"), "test": "qt"},
            },
        },
    )
    st_targets = [f"results/{a}/{f}" for a in ("cc", "qt") for f in ("results.tsv.gz",
                                                                      "summary.json")]  # fmt: skip
    procs = {
        "example": subprocess.Popen(
            _command(ex, ex_cfg), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ),
        "snpstats": subprocess.Popen(
            _command(st, st_cfg, *st_targets),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ),
    }
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, f"{name}: {err[-3000:]}"
    return {"example": ex, "snpstats": st}


def _results(work, analysis):
    return read_table(
        work / "results" / analysis / "results.tsv.gz",
        dtype={
            "feature_id": str,
            "chromosome": str,
            "allele1": str,
            "allele2": str,
            "counted_allele": str,
        },  # fmt: skip
    )


def _summary(work, analysis):
    return json.loads((work / "results" / analysis / "summary.json").read_text())


def _rel(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert np.array_equal(np.isnan(a), np.isnan(b))
    ok = ~np.isnan(b)
    return float(np.max(np.abs(a[ok] - b[ok]) / np.abs(b[ok])))


# --------------------------------------------------------------------------------------------
# the embedded example, config/snps.yaml
# --------------------------------------------------------------------------------------------
def test_example_qc_counts_and_kept_snps_as_plink2(runs):
    ref = read_table(REF / "plink2_example_filters.tsv").iloc[0]
    kept = pd.read_csv(REF / "plink2_example_filters.snplist.gz", header=None)[0].astype(str)
    norm = json.loads((runs["example"] / "results/normalized/summary.json").read_text())
    removed = norm["removed_by_filter"]
    assert removed == {"max_missing": int(ref["geno_removed"]), "min_hwe_p": int(ref["hwe_removed"]),
                       "min_maf": int(ref["maf_removed"]), "monomorphic": 0}  # fmt: skip
    assert norm["n_features"] == int(ref["remaining"]) == 3891
    assert norm["genotype"]["qc"] == {"n_input": 4000, "removed": removed, "n_kept": 3891}
    res = _results(runs["example"], "status")
    assert list(res["feature_id"]) == list(kept)  # plink2's order: the .bim's
    summary = _summary(runs["example"], "status")
    assert summary["normalization"]["removed_by_filter"] == removed
    assert summary["genotype"]["qc"]["removed"] == removed


def test_example_results_contract_and_columns(runs):
    res = _results(runs["example"], "status")
    cols = list(res.columns)
    assert cols[:8] == ["feature_id", "average", "sigma", "df_residual", "s2_prior", "df_prior",
                        "s2_post", "df_total"]  # fmt: skip
    assert cols[-15:] == SNP_COLUMNS + FINAL_FIVE
    summary = _summary(runs["example"], "status")
    assert summary["moderation"]["method"] == "none" and summary["test_statistic"] == "ordinary t"
    assert summary["genotype"]["beta_snp"]["phenotype"] == "statuscase"
    assert summary["genotype"]["counted_allele"] == 1
    top = read_table(runs["example"] / "results/status/top_table.tsv", dtype={"feature_id": str})
    assert set(SNP_COLUMNS) <= set(top.columns)
    bim = plink.read_bim(EXAMPLE / "example.bim").set_index("snp_id").loc[res["feature_id"]]
    assert (res["chromosome"].to_numpy() == bim["chromosome"].to_numpy()).all()
    assert (res["position"].to_numpy() == bim["position"].to_numpy()).all()
    assert (res["counted_allele"].to_numpy() == bim["allele1"].to_numpy()).all()


def test_example_results_equal_the_library_on_the_bed(runs):
    """lm_fit of the .bed's dosages (stacklm.genotype.plink) and gwas_effects, called directly."""
    res = _results(runs["example"], "status").set_index("feature_id")
    fam = plink.read_fam(EXAMPLE / "example.fam")
    bim = plink.read_bim(EXAMPLE / "example.bim")
    g = plink.read_genotypes(EXAMPLE / "example.bed", dtype=np.int8)
    stats = qc.snp_qc(g)
    keep = qc.qc_filter(stats, min_maf=0.01, max_missing=0.1, min_hwe_p=1e-6,
                        chromosome=bim["chromosome"]).keep  # fmt: skip
    assert list(bim["snp_id"][keep]) == list(res.index)
    sheet = read_table(EXAMPLE / "samples.tsv", dtype={"sample_id": str}).set_index("sample_id")
    sheet = sheet.loc[fam["iid"]]
    design = np.column_stack([np.ones(len(sheet)), sheet["status"] == "case", sheet["sex"] == "M",
                              sheet["geography"] == "Desert", sheet["geography"] == "Mountain"])  # fmt: skip
    names = ["Intercept", "statuscase", "sexM", "geographyDesert", "geographyMountain"]
    y = plink.int8_to_float(g[keep])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = lm_fit(y, design.astype(float), coef_names=names, feature_ids=res.index)
    effects = gwas.gwas_effects(fit, "statuscase", genotypes=y)
    for col, want in [("estimate_statuscase", fit.coefficients[:, 1]), ("sigma", fit.sigma),
                      ("beta_snp", effects["beta_snp"]), ("se_snp", effects["se_snp"]),
                      ("statistic", effects["t"]), ("p_value", effects["p_value"])]:  # fmt: skip
        diff = _rel(res[col], want)
        print(f"{col}: max relative difference to the library {diff:.2g}")
        assert diff <= 1e-12, col
    assert np.array_equal(res["df_residual"], fit.df_residual)
    assert np.array_equal(res["n"], np.isfinite(y).sum(axis=1))
    assert np.array_equal(res["maf"], stats["maf"][keep])
    assert np.array_equal(res["call_rate"], stats["call_rate"][keep])


def test_example_finds_the_causal_snps(runs):
    res = _results(runs["example"], "status").set_index("feature_id")
    truth = read_table(EXAMPLE / "truth.tsv", dtype={"snp_id": str}).set_index("snp_id")
    causal = truth.index[truth["kind"] == "causal"]
    assert causal.isin(res.index).all()  # QC keeps all 12
    called = res.index[res["fdr"] <= 0.05]
    print(f"{len(called)} SNPs at FDR 0.05, {called.isin(causal).sum()} of 12 causal")
    assert called.isin(causal).all() and len(called) >= 6  # no false positive, half the causal
    genome_wide = res.index[res["p_value"] <= 5e-8]
    assert genome_wide.isin(causal).all() and len(genome_wide) >= 3
    # beta_snp: the linear-probability effect of a copy of allele 1, same sign as the log OR
    c = res.loc[causal]
    assert (np.sign(c["beta_snp"]) == np.sign(truth.loc[causal, "log_odds_ratio"])).all()
    assert _summary(runs["example"], "status")["lambda_gc"] < 1.1  # geography adjusted for
    plots = runs["example"] / "results" / "status" / "plots"
    assert 0 < (plots / "manhattan.png").stat().st_size < 1_000_000
    drawn = read_table(plots / "manhattan.tsv.gz", dtype={"feature_id": str})
    assert set(drawn.loc[drawn["label"], "feature_id"]) == set(genome_wide)
    for name in ("qq", "volcano", "sample_density"):  # the usual plots work on genotypes
        assert (plots / f"{name}.png").stat().st_size > 0


# --------------------------------------------------------------------------------------------
# snpStats testdata (chromosomes 16-22): plink2 and R references
# --------------------------------------------------------------------------------------------
def test_snpstats_qc_counts_as_plink2(runs):
    ref = read_table(GENO / "plink2_filters.tsv").iloc[0]
    assert ref["filters"] == "--geno 0.2 --hwe 1e-4 --maf 0.05"
    norm = json.loads((runs["snpstats"] / "results/normalized/summary.json").read_text())
    assert norm["removed_by_filter"] == {"max_missing": int(ref["geno_removed"]),
                                         "min_hwe_p": int(ref["hwe_removed"]),
                                         "min_maf": int(ref["maf_removed"]), "monomorphic": 0}  # fmt: skip
    kept = pd.read_csv(GENO / "plink2_filters1.snplist.gz", header=None)[0].astype(str)
    res = _results(runs["snpstats"], "cc")
    assert sorted(res["feature_id"]) == sorted(kept) and len(kept) == int(ref["remaining"]) == 907


@pytest.mark.parametrize("analysis", ["cc", "qt"])
def test_snpstats_beta_snp_se_snp_equal_r_lm(runs, analysis):
    res = _results(runs["snpstats"], analysis).set_index("feature_id")
    ref = read_table(GENO / "lm_reference.tsv.gz", dtype={"feature_id": str})
    ref = ref.set_index("feature_id").loc[res.index]
    assert (res["counted_allele"] == plink.read_bim(GENO / "testdata_chr16_22.bim")
            .set_index("snp_id").loc[res.index, "allele2"]).all()  # fmt: skip
    worst = 0.0
    for ours, theirs in [("beta_snp", "beta_snp"), ("se_snp", "se_snp"), ("statistic", "t"),
                         ("p_value", "p")]:  # fmt: skip
        diff = _rel(res[ours], ref[f"{analysis}_{theirs}"])
        print(f"{analysis} {ours}: max relative difference to R lm {diff:.2g}")
        worst = max(worst, diff)
    assert worst <= 1e-8
    assert np.array_equal(res["df_residual"], ref[f"{analysis}_df_residual"])
    assert np.array_equal(res["n"], ref["n_called"])
    assert _summary(runs["snpstats"], analysis)["moderation"]["method"] == "none"


def test_snpstats_qt_equals_plink2_glm(runs):
    """plink2 --glm omit-ref counts the .bim's allele 1; the workflow here allele 2: BETA and T_STAT
    change sign, SE and P do not.  Compared to the digits plink2 prints (6 significant)."""
    res = _results(runs["snpstats"], "qt").set_index("feature_id")
    glm = (
        read_table(GENO / "plink2_glm_qt.tsv.gz", dtype={"ID": str}).set_index("ID").loc[res.index]
    )

    def printed(x):  # x to 6 significant digits, as plink2 prints it
        return np.array([float(f"{v:.6g}") for v in x])

    assert np.array_equal(printed(-res["beta_snp"]), glm["BETA"].to_numpy())
    assert np.array_equal(printed(res["se_snp"]), glm["SE"].to_numpy())
    assert np.array_equal(printed(-res["statistic"]), glm["T_STAT"].to_numpy())
    assert np.array_equal(res["n"], glm["OBS_CT"].to_numpy())
    assert _rel(res["p_value"], glm["P"]) < 5e-6  # plink2's own t tail: last printed digit
