# Helpers shared by the rules.


def analysis_settings(wildcards):
    """The analysis' settings as a plain dict (a params value: editing it re-runs that analysis)."""
    return dict(config["analyses"][wildcards.analysis])


def analysis_config(wildcards):
    """The configuration an analysis depends on: global settings and this analysis only."""
    out = {k: v for k, v in config.items() if k != "analyses"}
    out["analyses"] = {wildcards.analysis: dict(config["analyses"][wildcards.analysis])}
    return out


def chunk_files(wildcards):
    return expand(
        "results/{analysis}/intermediate/fit/chunk_{chunk}.npz",
        analysis=wildcards.analysis,
        chunk=range(CHUNKS),
    )


def matrix_mb(factor=1.0, base=500):
    """Memory (MB) for a step holding `factor` copies of the input matrix as float64."""

    def mem(wildcards, input, attempt):
        size = sum(os.path.getsize(f) for f in input if os.path.isfile(f)) / 1e6
        return int(base + factor * 8 * size * attempt)

    return mem
