"""All plots of one analysis, from its result files."""

from __future__ import annotations

import matplotlib

from stacklm.diagnostics.associations import (
    component_associations,
    covariate_table,
    strongest_associations,
)
from stacklm.diagnostics.crossproducts import CrossProducts, sum_cross_products
from stacklm.diagnostics.features import (
    binned_trend,
    design_estimate_correlation,
    estimate_correlation,
)
from stacklm.diagnostics.pca import cross_product_pcas
from stacklm.diagnostics.summary import markdown_table_html, reviewer_notes, summary_markdown
from stacklm.io.outputs import read_table, write_text
from stacklm.plots.common import reported_names
from stacklm.plots.estimates import (
    plot_estimate_annotation,
    plot_estimate_correlation,
    plot_estimate_trend,
)
from stacklm.plots.names import ANNOTATION_PLOTS, PLOTS
from stacklm.plots.samples import (
    plot_pca_associations,
    plot_pca_scores,
    plot_pca_scree,
    plot_sample_density,
    plot_sv_associations,
)
from stacklm.plots.statistics import (
    coefficient_rows,
    plot_md,
    plot_pvalue_histogram,
    plot_qq,
    plot_sa,
    plot_volcano,
)
from stacklm.plots.style import analysis_labels, labelled
from stacklm.spec import AnalysisSpec, DesignInfo
from stacklm.threads import executor
from stacklm.workflow.pipeline import read_design

matplotlib.use("Agg")

import functools
import json
import multiprocessing
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402


# --------------------------------------------------------------------------------------------
# one analysis, all plots
# --------------------------------------------------------------------------------------------
def _read_tsv(path, **kw) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", **kw)


def analysis_plots(
    outdir,
    results,
    summary: Mapping,
    design: pd.DataFrame,
    sheet: pd.DataFrame,
    spec: AnalysisSpec,
    info: DesignInfo,
    cross_products: CrossProducts,
    surrogate_variables: pd.DataFrame,
    sv_associations: pd.DataFrame,
    densities: pd.DataFrame,
    features: pd.DataFrame | None = None,
    n_components: int = 10,
    analysis_name: str = "",
    workers: int = 1,
) -> list[tuple]:
    """Draw every plot of an analysis into ``outdir`` (see :data:`PLOTS`).

    ``results``: the results table, or a function of no arguments returning it (with ``workers``
    > 1 the sample-structure figures, which do not need it, are drawn on a forked process while it
    is read); ``summary``: summary.json; ``design``: design as fitted
    (indexed by sample id); ``sheet``: the sample sheet (indexed by sample id); ``spec``, ``info``:
    the analysis and what its design step found; ``cross_products``: the summed chunk cross-products; ``densities``: the
    per-sample densities (:func:`stacklm.diagnostics.sample_distributions`); ``features``: the
    feature annotation (indexed by feature id) or None; ``analysis_name`` titles the figures.

    Returns the strongest covariate association of the top 3 components of each matrix (rows for
    :func:`stacklm.diagnostics.summary_markdown`; covariate None where none has p <= 0.05).
    """
    return _draw_analysis(outdir, results, summary, design, sheet, spec, info, cross_products,
                          surrogate_variables, sv_associations, densities, features,
                          n_components, analysis_name, workers)[0]  # fmt: skip


def _draw_analysis(outdir, results, summary, design, sheet, spec, info, cross_products,
                   surrogate_variables, sv_associations, densities, features, n_components,
                   analysis_name, workers):  # fmt: skip
    """:func:`analysis_plots`, returning (structure rows, the results table)."""
    labels = analysis_labels(analysis_name, summary, info, sheet)
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)

    def path(stem, suffix=None):
        return (
            out / f"{stem}.png",
            out / f"{stem}{suffix or PLOTS.get(stem) or ANNOTATION_PLOTS[stem]}",
        )

    with labelled(labels):
        sample_draws, structure = _sample_draws(path, design, sheet, spec, info, cross_products,
                                                surrogate_variables, sv_associations, densities,
                                                n_components)  # fmt: skip
        early = _start_draws(sample_draws, labels) if workers > 1 else None
        try:
            table = results() if callable(results) else results
            draws = _result_draws(path, table, summary, design, spec, surrogate_variables,
                                  features, workers)  # fmt: skip
            draw_all(draws if early else draws + sample_draws, workers, labels=labels)
        finally:
            if early is not None:
                pool, done = early
                try:
                    done.result()
                finally:
                    pool.shutdown()
    return structure, table


def _sample_draws(path, design, sheet, spec, info, cross_products, surrogate_variables,
                  sv_associations, densities, n_components):  # fmt: skip
    """The figures of the sample structure (PCA from the cross-products, surrogate variables,
    densities; not the results table), and the summary's structure rows."""
    sv_names = [str(c) for c in surrogate_variables.columns]
    samples = [str(s) for s in design.index]
    covariates = covariate_table(sheet, samples, spec.levels_dict,
                                    surrogate_variables if surrogate_variables.shape[1] else None,
                                    numeric=list(info.numeric_covariates))  # fmt: skip
    pcas = cross_product_pcas(cross_products, n_components)
    associations = {
        name: component_associations(pca.scores, covariates) for name, pca in pcas.items()
    }
    draws = []

    def draw(func, *args, **kwargs):
        draws.append(functools.partial(func, *args, **kwargs))

    for name, pca in pcas.items():
        draw(plot_pca_scores, pca, covariates, name, *path(f"pca_{name}"))
    in_design = list(info.variables) + sv_names
    draw(plot_pca_associations, pcas, associations, *path("pca_associations"), in_design=in_design)
    draw(plot_pca_scree, pcas, *path("pca_scree"))
    draw(plot_sample_density, densities, samples, *path("sample_density"))
    draw(plot_sv_associations, sv_associations, *path("sv_associations"),
                         requested=spec.surrogate.requested)  # fmt: skip
    structure = []
    for name, pca in pcas.items():
        best = strongest_associations(associations[name])
        for comp in list(pca.scores.columns)[:3]:
            row = best[best["component"] == comp]
            k = int(comp[2:]) - 1
            if len(row):
                r = row.iloc[0]
                structure.append((name, comp, float(pca.variance_fraction[k]), r["covariate"],
                                  float(r["r2"]), float(r["p_value"])))  # fmt: skip
            else:  # structure no sample covariate explains (a hidden confounder?)
                structure.append((name, comp, float(pca.variance_fraction[k]), None, np.nan,
                                  np.nan))  # fmt: skip
    return draws, structure


def _result_draws(path, results, summary, design, spec, surrogate_variables, features, workers):
    """The figures of the results table, the costliest first."""
    alpha = float(summary.get("alpha", 0.05))
    test = list(summary.get("test") or [])
    stat = summary.get("test_statistic", "t" if len(test) == 1 else "F")
    test_label = f"the moderated {stat} test of {', '.join(test)}" if test else "the test"
    sv_names = [str(c) for c in surrogate_variables.columns]
    names = [n for n in reported_names(results) if n not in sv_names]
    all_names = reported_names(results)
    draws = []

    def draw(func, *args, **kwargs):  # drawn by draw_all, on `workers` processes
        draws.append(functools.partial(func, *args, **kwargs))

    # shared by several figures, computed once before the figures are drawn on forked processes
    average = results["average"].to_numpy(dtype=float)
    order = np.argsort(average, kind="stable")
    rows = coefficient_rows(results, names, alpha)
    with executor(min(max(workers, 1), 2)) as pool:  # numpy's sorts and gathers release the GIL
        trends = dict(zip(names, pool.map(
            lambda n: binned_trend(average, results[f"estimate_{n}"].to_numpy(dtype=float),
                                   order=order), names), strict=True))  # fmt: skip
    # the costliest figures first: the other process draws the small ones meanwhile (the
    # annotation's 3 x 8 panels cost the most: 2.3 s of the example's plots on the test VM)
    if features is not None:
        draw(plot_estimate_annotation, results, names, features, *path("estimate_annotation"))
    draw(plot_md, results, names, alpha, *path("md"), rows=rows, order=order, trends=trends)
    draw(plot_volcano, results, names, alpha, *path("volcano"), rows=rows)
    draw(plot_sa, results, spec.moderation.trend, spec.moderation.robust, *path("sa"), order=order)
    draw(plot_estimate_trend, results, names, *path("estimate_trend"), order=order, trends=trends)
    p = results["p_value"].to_numpy(dtype=float)
    draw(plot_pvalue_histogram, p, summary.get("pi0"), test_label, *path("pvalue_histogram"))
    draw(plot_qq, p, summary.get("lambda_gc"), test_label, *path("qq"))
    draw(_plot_estimate_correlation, results, all_names, design, spec.contrasts_dict,
         *path("estimate_correlation"))  # fmt: skip
    return draws


def _plot_estimate_correlation(results, names, design, contrasts, png, data_path) -> None:
    """The observed correlation of the estimates across features (computed where it is drawn)
    and the one the design implies."""
    observed = estimate_correlation(
        results[[f"estimate_{n}" for n in names]].set_axis(list(names), axis=1)
    )
    expected = design_estimate_correlation(design, names, contrasts)
    plot_estimate_correlation(observed, expected, png, data_path)


def results_columns(names: Sequence[str]) -> list[str]:
    """The columns of results.parquet the plots and summary.md read, of the table's ``names``:
    the per-feature statistics, each coefficient's estimate, p-value and FDR, the test's p-value,
    FDR and q-value (a third of the table at 7 coefficients)."""
    fixed = {"feature_id", "average", "sigma", "df_residual", "s2_prior", "df_prior", "p_value",
             "fdr", "qvalue"}  # fmt: skip
    per_name = ("estimate_", "p_", "fdr_")
    reported = {n[len("estimate_") :] for n in names if n.startswith("estimate_")}
    wanted = fixed | {f"{prefix}{r}" for r in reported for prefix in per_name}
    return [n for n in names if n in wanted]


def significant_counts(
    results: pd.DataFrame, alpha: float, exclude: Sequence[str] = ()
) -> dict[str, int]:
    """Features with FDR <= alpha (q-value <= alpha): the analysis test, then each reported
    coefficient/contrast but those in ``exclude`` (the surrogate variables)."""
    out = {"test (fdr)": int(np.sum(results["fdr"].to_numpy(dtype=float) <= alpha))}
    out["test (qvalue)"] = int(np.sum(results["qvalue"].to_numpy(dtype=float) <= alpha))
    for name in reported_names(results):
        if name in set(exclude):
            continue
        out[name] = int(np.sum(results[f"fdr_{name}"].to_numpy(dtype=float) <= alpha))
    return out


def run_plots(
    outdir,
    results_path,
    summary_path,
    design_path,
    design_info_path,
    sheet: pd.DataFrame,
    spec: AnalysisSpec,
    cross_product_paths: Sequence,
    sv_path,
    sv_associations_path,
    densities_path,
    features_path=None,
    summary_md_path=None,
    summary_html_path=None,
    analysis_name: str = "",
    workers: int = 1,
) -> None:
    """The workflow's plot step from files: read the analysis outputs, draw every plot, write
    summary.md (and its HTML rendering for the report)."""

    def results():  # read while the sample-structure figures are drawn (see analysis_plots)
        # the ids stay Arrow strings: the data tables take their rows (statistics.feature_ids)
        columns = results_columns(pq.read_schema(results_path).names)
        return read_table(results_path, columns=columns)

    summary = json.loads(Path(summary_path).read_text())
    design = read_design(design_path)
    info = DesignInfo.read(design_info_path)
    sv = read_design(sv_path)
    sv_assoc = _read_tsv(sv_associations_path)
    densities = _read_tsv(densities_path, dtype={"sample": str})
    features = None
    if features_path:
        sep = "," if str(features_path).lower().endswith((".csv", ".csv.gz")) else "\t"
        features = pd.read_csv(features_path, sep=sep, index_col=0)
        features.index = features.index.astype(str)
    cross = sum_cross_products(list(cross_product_paths))
    structure, table = _draw_analysis(outdir, results, summary, design, sheet, spec, info, cross,
                                      sv, sv_assoc, densities, features, 10, analysis_name,
                                      workers)  # fmt: skip
    if summary_md_path:
        text = summary_markdown(
            analysis_name,
            summary,
            significant_counts(table, float(summary.get("alpha", 0.05)), list(sv.columns)),
            structure,
            notes=reviewer_notes(summary, sv_assoc, info.variables),
        )
        write_text(text, summary_md_path)
        if summary_html_path:
            write_text(markdown_table_html(text, f"stacklm {analysis_name}"), summary_html_path)


_PENDING: list = []


def _draw_one(i: int) -> None:
    labels, func = _PENDING[i]
    with labelled(labels):
        func()


def _draw_many(indices: Sequence[int]) -> None:
    for i in indices:
        _draw_one(i)


def _start_draws(draws: Sequence, labels=None):
    """Start drawing ``draws`` one after the other on one forked process, now (the caller goes on
    meanwhile); returns (the pool, the future of the drawing) to wait for."""
    global _PENDING
    _PENDING = [(labels, func) for func in draws]
    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork"))
    try:
        return pool, pool.submit(_draw_many, range(len(draws)))  # the process forks here
    finally:
        _PENDING = []


def draw_all(draws: Sequence, workers: int = 1, labels=None) -> None:
    """Draw the figures: in this process, or spread over ``workers`` forked processes (each figure
    is drawn and written by one of them; the files are the same bytes either way)."""
    if workers <= 1 or len(draws) < 2:
        for func in draws:
            func()
        return
    global _PENDING
    _PENDING = [(labels, func) for func in draws]
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            list(pool.map(_draw_one, range(len(draws))))
    finally:
        _PENDING = []
