# Helpers of workflow/rules/counts.smk (RNA-seq counts, sample weights and blocks of correlated
# samples, issues 16 and 17; the steps are stacklm/workflow/weighting/).  Per analysis that
# needs them (counts input, sample_weights, array_weights or block): the counts step (library
# sizes, filterByExpr, calcNormFactors), the setup step (sheet weights and blocks; arrayWeights and
# voomWithQualityWeights, which are global; no job of its own for a block on continuous input
# whose correlation is estimated), then rounds of a chunk pass whose small global step (voom's
# trend, duplicateCorrelation's consensus) every reader of the round computes from its parts, and
# the weighted fit in the fit_chunk rule (workflow/rules/fit.smk).  Other analyses never run
# these rules.
from types import SimpleNamespace

from stacklm.workflow.weighting.plan import (
    has_setup_job,
    uses_weighted_path,
    values_kind,
    weighting_rounds,
)

INPUT_SCALE = config["input_scale"]
COUNTS = INPUT_SCALE == "counts"
WEIGHTED = {a: uses_weighted_path(SPECS[a], INPUT_SCALE) for a in ANALYSES}
ROUNDS = {a: weighting_rounds(SPECS[a], INPUT_SCALE) if WEIGHTED[a] else [] for a in ANALYSES}
SETUP_JOB = {a: WEIGHTED[a] and has_setup_job(SPECS[a], INPUT_SCALE) for a in ANALYSES}


def counts_inputs(wildcards):
    """The counts step's outputs an analysis' later steps read (nothing without counts)."""
    if not COUNTS:
        return {}
    return {
        "libraries": rules.weights_setup.output.libraries.format(analysis=wildcards.analysis),
        "keep": rules.weights_setup.output.keep.format(analysis=wildcards.analysis),
    }


def weighting_state(wildcards):
    """The analysis' final weighting state: the last round's parts (each reader computes the
    round's global step from them), or setup's state file without rounds."""
    n = len(ROUNDS[wildcards.analysis])
    if n == 0:
        return rules.weights_setup.output.state.format(analysis=wildcards.analysis)
    return _round_parts(wildcards.analysis, n)


def round_start_inputs(wildcards):
    """What a round's chunk starts from: the round before's parts; for round 1 setup's state, or
    (analyses without a setup job, plan.has_setup_job) the sample sheet with the blocks."""
    r = int(wildcards.round)
    if r > 1:
        return {"previous": _round_parts(wildcards.analysis, r - 1)}
    if SETUP_JOB[wildcards.analysis]:
        return {"state": rules.weights_setup.output.state.format(analysis=wildcards.analysis)}
    return {"samples": config["samples"]}


def round_task(wildcards):
    return ROUNDS[wildcards.analysis][int(wildcards.round) - 1]


def _round_parts(analysis, r):
    return expand(rules.weights_chunk.output.part, analysis=analysis, round=r, chunk=range(CHUNKS))


def weighted_fit_inputs(wildcards):
    """Extra inputs of the fit_chunk rule for a weighted analysis (none for the unweighted fit)."""
    if not WEIGHTED[wildcards.analysis]:
        return {}
    return {"state": weighting_state(wildcards), **counts_inputs(wildcards)}


def weighting_summary_inputs(wildcards):
    """Extra inputs of the moderate rule for a weighted analysis (its state and counts summary)."""
    if not WEIGHTED[wildcards.analysis]:
        return {}
    out = {"weighting_state": weighting_state(wildcards)}
    if COUNTS:
        out["counts_summary"] = rules.weights_setup.output.summary.format(
            analysis=wildcards.analysis
        )
    return out


def _analysis_values_mb(wildcards, input):
    """The analysis' matrix as float64 (all features x all samples of the store: an upper bound)."""
    n_features, n_samples = _store_shape(input.store)
    return n_features * n_samples * 8 / 1e6


def setup_mem_mb(wildcards, input, attempt):
    """arrayWeights / voomWithQualityWeights hold every feature's values, weights and fitted
    values (~8 copies); calcNormFactors the kept counts (~3 copies); otherwise one block."""
    spec = SPECS[wildcards.analysis]
    if spec.weighting.array_weights or spec.weighting.weights == "voom_quality":
        return int(PYTHON_MB + attempt * 8 * _analysis_values_mb(wildcards, input))
    if COUNTS:
        return int(PYTHON_MB + attempt * 3 * _analysis_values_mb(wildcards, input))
    return PYTHON_MB + 200


def setup_runtime(wildcards, input, attempt):
    return int(attempt * (10 + _analysis_values_mb(wildcards, input) / 10))


def weights_chunk_mem_mb(wildcards, input, attempt):
    """One row block of the chunk (FIT_BLOCK_VALUES: 32 MB as float64) and voom's / the REML's
    working copies of it, plus the chunk's per-feature output (~50 doubles a row); measured
    275 MiB for 143,000 x 48 (duplicateCorrelation) per job."""
    rows, block_mb = chunk_rows_and_block_mb(input.store)
    return int(PYTHON_MB + 400 + attempt * (4 * block_mb + rows * 400 / 1e6))


# Diagnostic plots of the counts and weights steps, per analysis where they apply (captions
# workflow/report/<stem>.rst).
WEIGHTING_PLOTS = ("library_sizes", "voom_trend", "sample_weights", "block_correlation")


def weighting_plots(analysis) -> list[str]:
    """The counts / weights plots of an analysis (stems of WEIGHTING_PLOTS)."""
    if not WEIGHTED[analysis]:
        return []
    spec = SPECS[analysis]
    w = spec.weighting
    out = []
    if COUNTS:
        out.append("library_sizes")
    if values_kind(spec, INPUT_SCALE) == "voom":
        out.append("voom_trend")
    if w.sample_weights is not None or w.array_weights or w.weights == "voom_quality":
        out.append("sample_weights")
    if w.block is not None:
        out.append("block_correlation")
    return out


WEIGHTING_PLOT_TARGETS = [
    f"results/{a}/plots/{stem}.png" for a in ANALYSES for stem in weighting_plots(a)
]


def weighting_plot_inputs(analysis) -> dict:
    """The inputs of an analysis' weighting plots: its final state (and library sizes)."""
    wildcards = SimpleNamespace(analysis=analysis)
    return {"state": weighting_state(wildcards), **counts_inputs(wildcards)}
