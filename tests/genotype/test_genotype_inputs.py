"""PLINK input in the workflow configuration and the normalize step (issue 18): the input-dependent
moderation default, one-line errors for settings and files that do not fit, and the QC step's
counts, store and SNP table against stacklm.genotype called directly."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import REPO, TEST_DATA, read_table

from stacklm.genotype import plink, qc
from stacklm.io.store import open_binary_matrix
from stacklm.spec import AnalysisSpec
from stacklm.workflow.checks import ConfigCheckError, check_config
from stacklm.workflow.config import validate_analysis, validate_config
from stacklm.workflow.genotype_steps import normalize_genotypes, read_snp_table

GENO = TEST_DATA / "genotype"
BED = GENO / "testdata_chr16_22.bed"
ANALYSIS = {"formula": "~ cc + sex + region", "levels": {"cc": [0, 1]}, "test": "cc1"}


def config(**kw):
    base = {"matrix": str(BED), "samples": str(GENO / "samples.tsv"), "analyses": {"a": ANALYSIS}}
    return validate_config({**base, **kw})


def test_moderation_default_depends_on_the_input():
    assert config()["analyses"]["a"]["moderation"]["method"] == "none"
    matrix = config(matrix=str(REPO / "resources/example/expression.tsv.gz"))
    assert matrix["analyses"]["a"]["moderation"]["method"] == "ebayes"
    explicit = config(analyses={"a": {**ANALYSIS, "moderation": {"method": "ebayes"}}})
    assert explicit["analyses"]["a"]["moderation"]["method"] == "ebayes"
    assert validate_analysis(ANALYSIS)["moderation"]["method"] == "ebayes"  # no input known
    assert config(matrix_format="plink")["analyses"]["a"]["moderation"]["method"] == "none"
    specs = check_config(config())
    assert isinstance(specs["a"], AnalysisSpec) and specs["a"].moderation.method == "none"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"filter": {"min_average": 1.0}}, "filter.min_average does not apply to PLINK genotype"),
        ({"normalize": {"method": "quantile"}}, "normalize.method / normalize.log2 do not apply"),
        ({"input_scale": "beta"}, "is a PLINK fileset of allele counts"),
    ],
)
def test_settings_that_do_not_fit_genotypes_are_one_line_errors(change, message):
    with pytest.raises(ConfigCheckError, match=message) as err:
        check_config(config(**change))
    assert "\n" not in str(err.value)


def test_genotype_filters_on_a_matrix_are_an_error():
    cfg = validate_config(
        {
            "matrix": str(REPO / "resources/example/expression.tsv.gz"),
            "samples": str(REPO / "resources/example/samples.tsv"),
            "filter": {"min_maf": 0.05},
            "analyses": {"a": {"formula": "~ geography", "test": "geographyDesert"}},
        }
    )
    with pytest.raises(ConfigCheckError, match="filter.min_maf applies to PLINK genotype input"):
        check_config(cfg)


def test_missing_fam_and_unmatched_samples_name_the_file(tmp_path):
    for ext in ("bed", "bim"):
        shutil.copy(GENO / f"testdata_chr16_22.{ext}", tmp_path / f"d.{ext}")
    with pytest.raises(ConfigCheckError, match=r"needs .*d\.fam"):
        check_config(config(matrix=str(tmp_path / "d.bed")))
    fam = (GENO / "testdata_chr16_22.fam").read_text().splitlines()
    (tmp_path / "d.fam").write_text("\n".join(["X1 X1 0 0 1 1", *fam[1:]]) + "\n")
    with pytest.raises(ConfigCheckError, match=r"d\.bed and .*samples.tsv do not match.*X1"):
        check_config(config(matrix=str(tmp_path / "d.bed")))


def test_normalize_genotypes_equals_the_library(tmp_path):
    filters = {"max_missing": 0.2, "min_hwe_p": 1e-4, "min_maf": 0.05}
    summary = normalize_genotypes(
        BED, tmp_path / "store", tmp_path / "snps.tsv.gz", counted_allele=2, filters=filters,
        chunk_values=400 * 97,  # 97 SNPs per chunk: counts summed over 21 chunks
    )  # fmt: skip
    ref = read_table(GENO / "plink2_filters.tsv").iloc[0]
    assert summary["removed_by_filter"] == {"max_missing": int(ref["geno_removed"]),
                                            "min_hwe_p": int(ref["hwe_removed"]),
                                            "min_maf": int(ref["maf_removed"]), "monomorphic": 0}  # fmt: skip
    json.dumps(summary)  # JSON-ready
    bim = plink.read_bim(BED)
    g = plink.read_genotypes(BED, counted_allele=2, dtype=np.int8)
    stats = qc.snp_qc(g)
    keep = qc.qc_filter(stats, chromosome=bim["chromosome"], **filters).keep
    store = open_binary_matrix(tmp_path / "store")
    assert list(store.feature_ids) == list(bim["snp_id"][keep])
    assert store.samples == list(plink.read_fam(BED)["iid"])
    assert np.array_equal(store.rows(0, store.n_features), plink.int8_to_float(g[keep]),
                          equal_nan=True)  # fmt: skip
    snps = read_snp_table(tmp_path / "snps.tsv.gz")
    assert list(snps["feature_id"]) == list(store.feature_ids)
    assert (snps["counted_allele"].to_numpy() == bim["allele2"][keep].to_numpy()).all()
    for col in ("maf", "call_rate", "hwe_p", "allele_freq", "n_called"):
        assert np.array_equal(snps[col].to_numpy(), stats[col][keep].to_numpy()), col


def test_duplicated_snp_ids_and_short_bim_are_one_line_errors(tmp_path):
    for ext in ("bed", "fam"):
        shutil.copy(GENO / f"testdata_chr16_22.{ext}", tmp_path / f"d.{ext}")
    lines = (GENO / "testdata_chr16_22.bim").read_text().splitlines()
    unnamed = [line.split("\t") for line in lines]  # SNPs without ids are "." in many .bim files
    (tmp_path / "d.bim").write_text("".join("\t".join([f[0], ".", *f[2:]]) + "\n" for f in unnamed))
    with pytest.raises(ValueError, match=r"d\.bim: SNP ids must be unique.*set-all-var-ids"):
        normalize_genotypes(tmp_path / "d.bed", tmp_path / "s", tmp_path / "snps.tsv.gz")
    (tmp_path / "d.bim").write_text("\n".join(lines[:-3]) + "\n")
    with pytest.raises(ValueError, match=r"has 1983 lines but .*1986 SNPs"):
        normalize_genotypes(tmp_path / "d.bed", tmp_path / "s", tmp_path / "snps.tsv.gz")
    assert not (tmp_path / "s").exists()


def test_plots_label_genotype_estimates_as_dosage_differences():
    from stacklm.plots.style import scale_labels

    assert scale_labels(config()) == ("dosage", "dosage difference")
