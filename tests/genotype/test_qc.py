"""stacklm.genotype.qc against plink2 v2.00a3.5 (tests/data/genotype, make_reference.sh).

- exact HWE p-values = plink2 ``--hardy`` (and ``--hardy midp``) to every digit printed, on the
  1,986 SNPs of the testdata subset and on 400 synthetic count triples of 2,000 samples (all
  heterozygous, no heterozygote, single rare copies, p-values that underflow);
- allele frequencies and missing fractions = plink2 ``--freq`` / ``--missing`` to the digits printed;
- ``qc_filter`` removes per filter what plink2 ``--geno`` / ``--hwe`` / ``--maf`` log, and keeps the
  same SNPs; the monomorphic SNPs are exactly those R's lm gives NA for.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import TEST_DATA, read_table

from stacklm.genotype import plink, qc

DATA = TEST_DATA / "genotype"
BED = DATA / "testdata_chr16_22.bed"


def plink2_digits(values) -> np.ndarray:
    """Numbers as plink2 prints them (6 significant digits, %g style)."""
    return np.array(["nan" if np.isnan(v) else f"{v:.6g}" for v in np.asarray(values, float)])


@pytest.fixture(scope="module")
def stats():
    return qc.snp_qc(plink.read_genotypes(BED, counted_allele=2, dtype=np.int8))


@pytest.mark.parametrize("midp", [False, True])
def test_hwe_equals_plink2_hardy(stats, midp):
    name = "plink2_hardy_midp.tsv.gz" if midp else "plink2_hardy.tsv.gz"
    hardy = read_table(DATA / name, dtype=str, keep_default_na=False)
    col = "MIDP" if midp else "P"
    p = qc.hwe_exact(stats["n_1"], stats["n_2"], stats["n_0"], midp=midp)
    np.testing.assert_array_equal(plink2_digits(p), hardy[col].to_numpy())
    if not midp:
        np.testing.assert_array_equal(p, stats["hwe_p"])


@pytest.mark.parametrize("midp", [False, True])
def test_hwe_extreme_triples_equal_plink2(midp):
    name = "plink2_hardy_extremes_midp.tsv.gz" if midp else "plink2_hardy_extremes.tsv.gz"
    hardy = read_table(DATA / name, dtype=str, keep_default_na=False)
    het, h1, h2 = (hardy[c].astype(int).to_numpy() for c in ("HET_A1_CT", "HOM_A1_CT", "TWO_AX_CT"))
    p = qc.hwe_exact(het, h1, h2, midp=midp)
    np.testing.assert_array_equal(plink2_digits(p), hardy["MIDP" if midp else "P"].to_numpy())
    assert (p == 0).sum() >= 5 and (p == (0.5 if midp else 1.0)).sum() >= 10  # extremes are there
    # order of the homozygote counts does not matter; broadcasting and scalars work
    np.testing.assert_array_equal(qc.hwe_exact(het, h2, h1, midp=midp), p)
    assert qc.hwe_exact(int(het[30]), int(h1[30]), int(h2[30]), midp=midp) == p[30]


def test_frequencies_and_missingness_equal_plink2(stats):
    freq = read_table(DATA / "plink2_freq.tsv.gz", dtype=str, keep_default_na=False)
    # plink2 --freq reports the ALT (= .bim allele 1) frequency; the stats count allele 2
    np.testing.assert_array_equal(
        plink2_digits(1.0 - stats["allele_freq"]), freq["ALT_FREQS"].to_numpy()
    )
    np.testing.assert_array_equal(2 * stats["n_called"], freq["OBS_CT"].astype(int))
    vmiss = read_table(DATA / "plink2_vmiss.tsv.gz", dtype=str, keep_default_na=False)
    np.testing.assert_array_equal(
        plink2_digits(stats["missing_fraction"]), vmiss["F_MISS"].to_numpy()
    )
    np.testing.assert_array_equal(stats["call_rate"] + stats["missing_fraction"], 1.0)
    maf = stats["maf"].to_numpy()
    assert np.nanmax(maf) <= 0.5 and np.array_equal(np.isnan(maf), stats["n_called"].eq(0))


def _filter_args(flags: str) -> dict:
    tok = flags.split()
    out = {}
    for i, t in enumerate(tok):
        if t == "--geno":
            out["max_missing"] = float(tok[i + 1])
        elif t == "--hwe":
            out["min_hwe_p"] = float(tok[i + 1])
        elif t == "--maf":
            out["min_maf"] = float(tok[i + 1])
    return out, "midp" in tok


def test_filters_remove_what_plink2_removes(stats):
    bim = plink.read_bim(BED)
    runs = read_table(DATA / "plink2_filters.tsv", dtype=str, keep_default_na=False)
    geno = plink.read_genotypes(BED, counted_allele=1, dtype=np.int8)
    stats_midp = qc.snp_qc(geno, hwe_midp=True)
    names = {"max_missing": "geno_removed", "min_hwe_p": "hwe_removed", "min_maf": "maf_removed"}
    for i, row in runs.iterrows():
        kw, midp = _filter_args(row["filters"])
        res = qc.qc_filter(
            stats_midp if midp else stats,
            chromosome=bim["chromosome"],
            drop_monomorphic=False,
            **kw,
        )
        assert list(res.removed) == [k for k in names if k in kw]  # plink2's order
        for key, col in names.items():
            expected = row[col]
            assert (str(res.removed[key]) if key in res.removed else "NA") == expected, (i, key)
        assert res.n_kept == int(row["remaining"]), row["filters"]
        if i == 0:
            kept = read_table(DATA / "plink2_filters1.snplist.gz", header=None, dtype=str)[0]
            assert list(bim["snp_id"][res.keep]) == list(kept)
    # the counted allele does not change any filter
    a = qc.qc_filter(stats, 0.05, 0.2, 1e-4)
    b = qc.qc_filter(qc.snp_qc(geno), 0.05, 0.2, 1e-4)
    np.testing.assert_array_equal(a.keep, b.keep)


def test_monomorphic_are_the_snps_r_cannot_fit(stats):
    ref = read_table(DATA / "lm_reference.tsv.gz")
    np.testing.assert_array_equal(stats["monomorphic"], ref["cc_t"].isna())
    res = qc.qc_filter(stats)
    assert res.removed == {"monomorphic": int(ref["cc_t"].isna().sum())}
    summary = res.summary()
    assert summary["n_input"] == len(stats) and summary["n_kept"] == res.n_kept


def test_counts_and_checks():
    g = np.array([[0, 1, 2, np.nan], [np.nan] * 4, [1, 1, 1, 1], [2, 2, np.nan, 2]])
    np.testing.assert_array_equal(
        qc.genotype_counts(g), [[1, 1, 1, 1], [0, 0, 0, 4], [0, 4, 0, 0], [0, 0, 3, 1]]
    )
    s = qc.snp_qc(g)
    assert s["monomorphic"].tolist() == [False, True, True, True]  # all het: constant dosage
    np.testing.assert_array_equal(s["allele_freq"], [0.5, np.nan, 0.5, 1.0])
    with pytest.raises(ValueError, match="0, 1, 2"):
        qc.genotype_counts(np.array([[0.0, 3.0]]))
    with pytest.raises(ValueError, match="non-negative"):
        qc.hwe_exact([-1], [0], [0])
    with pytest.raises(ValueError, match="max_missing"):
        qc.qc_filter(s, max_missing=-0.1)
    # founders: frequencies and HWE on founders only, call rate on all samples
    founders = np.array([True, True, False, True])
    sf = qc.snp_qc(g, founders=founders)
    np.testing.assert_array_equal(sf["allele_freq"], [0.25, np.nan, 0.5, 1.0])
    np.testing.assert_array_equal(sf["n_missing"], s["n_missing"])
    # chrX/Y/MT are not HWE-tested when the chromosomes are given
    hw = pd.DataFrame(
        {
            "n_called": [10, 10],
            "n_missing": [0, 0],
            "hwe_p": [1e-9, 1e-9],
            "maf": [0.3, 0.3],
            "monomorphic": [False, False],
        }
    )
    assert qc.qc_filter(hw, min_hwe_p=1e-6, chromosome=["X", "5"]).keep.tolist() == [True, False]
