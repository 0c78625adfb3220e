"""The counts / weights diagnostics of an analysis drawn from its final state (matplotlib: only the
weighting plots job imports this module)."""

from __future__ import annotations

from collections.abc import Mapping

from stacklm.plots.style import Labels, labelled
from stacklm.plots.weighting import (
    plot_block_correlation,
    plot_library_sizes,
    plot_sample_weights,
    plot_voom_trend,
)
from stacklm.workflow.weighting.rounds import load_state
from stacklm.workflow.weighting.rows import read_libraries


def weighting_plots_step(
    plots: Mapping, state_path, libraries_path=None, analysis_name: str = ""
) -> None:
    """Draw an analysis' counts / weights diagnostics: ``plots`` maps each plot
    (``library_sizes``, ``voom_trend``, ``sample_weights``, ``block_correlation``) to its (PNG,
    data table) paths; from the final state (its file or the last round's parts,
    :func:`.rounds.load_state`) and the library sizes."""
    state = load_state(state_path)
    with labelled(Labels(analysis=analysis_name)):
        for plot, (png, data_path) in plots.items():
            if plot == "library_sizes":
                plot_library_sizes(read_libraries(libraries_path).reset_index(), png, data_path)
            elif plot == "voom_trend":
                plot_voom_trend(state.sx, state.sy, state.trend, png, data_path)
            elif plot == "sample_weights":
                plot_sample_weights(
                    state.samples,
                    state.sample_weights,
                    state.sample_weights_source,
                    png,
                    data_path,
                )
            elif plot == "block_correlation":
                plot_block_correlation(
                    state.atanh,
                    state.correlation,
                    state.atanh_ids,
                    state.n_not_converged,
                    state.correlation_estimated,
                    png,
                    data_path,
                )
            else:
                raise ValueError(f"unknown counts / weights plot {plot!r}")
