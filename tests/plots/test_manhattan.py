"""Manhattan plot (stacklm.plots.manhattan): natural chromosome order, thinning that keeps every SNP
above p = 1e-3, one label per genome-wide locus, and a PNG under 1 MB at 10^6 SNPs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from stacklm.plots.manhattan import (
    chromosome_key,
    genome_coordinates,
    plot_manhattan,
    thin_points,
    top_loci,
)


def test_chromosomes_in_natural_order():
    codes = ["10", "2", "X", "chr1", "MT", "22", "Y", "contig_b", "contig_a", "XY", "23"]
    ordered = sorted(codes, key=chromosome_key)
    assert ordered == ["chr1", "2", "10", "22", "X", "23", "Y", "XY", "MT", "contig_a", "contig_b"]
    x, chroms = genome_coordinates(["2", "10", "1", "2", "1"], [5, 7, 100, 50, 200])
    assert list(chroms["chromosome"]) == ["1", "2", "10"]
    assert x[2] < x[4] < x[0] < x[3] < x[1]  # chromosome 1, then 2, then 10, end to end


def test_thinning_keeps_every_point_above_the_threshold():
    rng = np.random.default_rng(3)
    x = rng.random(200_000) * 1e9
    y = -np.log10(rng.random(200_000))
    kept = thin_points(x, y, keep_above=3.0, grid=(900, 30))
    assert np.array_equal(np.flatnonzero(y >= 3.0), kept[y[kept] >= 3.0])
    assert (y[kept] < 3.0).sum() <= 900 * 30 and kept.size < 30_000


def test_top_loci_one_label_per_locus():
    chrom = np.array(["1", "1", "1", "2"])
    pos = np.array([1_000_000, 1_400_000, 5_000_000, 1_000_000])
    p = np.array([1e-10, 1e-12, 1e-9, 0.5])
    assert list(top_loci(chrom, pos, p, 5e-8, 10)) == [1, 2]


def test_manhattan_png_under_1mb_at_a_million_snps(tmp_path):
    rng = np.random.default_rng(1)
    n = 10**6
    chrom = np.repeat(np.arange(1, 23), n // 22 + 1)[:n]
    pos = np.concatenate(
        [np.sort(rng.integers(1, 250_000_000, size=(chrom == c).sum())) for c in range(1, 23)]
    )
    p = rng.random(n)
    hits = [1_000, 400_000, 400_003, 900_000]
    p[hits] = [1e-12, 3e-9, 1e-10, 0.0]  # 0: an underflowed p-value
    results = pd.DataFrame(
        {
            "feature_id": np.char.add("rs", np.arange(n).astype(str)),
            "chromosome": chrom.astype(str),
            "position": pos,
            "p_value": p,
        }
    )
    png, data = tmp_path / "manhattan.png", tmp_path / "manhattan.tsv.gz"
    drawn = plot_manhattan(results, png, data, title="t of status")
    size = png.stat().st_size
    print(f"PNG {size / 1e6:.3f} MB, data {data.stat().st_size / 1e6:.3f} MB, {len(drawn)} points")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and size < 1_000_000
    assert data.stat().st_size < 1_000_000
    assert set(drawn.loc[drawn["label"], "feature_id"]) == {"rs1000", "rs400003", "rs900000"}
    assert (drawn["neg_log10_p"] >= 3).sum() == int((p <= 1e-3).sum())
    assert len(drawn) < 50_000
