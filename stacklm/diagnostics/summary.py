"""The reviewer's summary (summary.md) and its HTML table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


# --------------------------------------------------------------------------------------------
# the reviewer's summary
# --------------------------------------------------------------------------------------------
def format_number(value, digits: int = 4) -> str:
    """How summary.md writes a number: integers with thousands separators, floats with ``digits``
    significant digits, infinities as ``Inf`` (also JSON's ``"Infinity"``), missing as ``NA``."""
    if isinstance(value, str) and value in ("Infinity", "-Infinity"):
        value = float(value.replace("Infinity", "inf"))
    if value is None:
        return "NA"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        if np.isnan(value):
            return "NA"
        if np.isinf(value):
            return "Inf" if value > 0 else "-Inf"
        return f"{value:.{digits}g}"
    return str(value)


def _weighting_rows(s: Mapping) -> list[str]:
    """Rows for counts, weights and blocks (summary.json's ``counts``, ``weights``, ``block``)."""
    rows = []
    counts = s.get("counts")
    if counts:
        rows.append(
            f"| counts: features removed by filterByExpr / normalization | "
            f"{format_number(counts.get('n_removed_by_filter_by_expr'))} / "
            f"{counts.get('normalize_method')} |"
        )
    weights = s.get("weights")
    if weights:
        rows.append(
            f"| observation weights / sample weights | {weights.get('observation_weights') or 'none'}"
            f" / {weights.get('sample_weights_source') or 'none'} |"
        )
    block = s.get("block")
    if block:
        how = "estimated" if block.get("estimated") else "given"
        rows.append(
            f"| block `{block.get('column')}` ({format_number(block.get('n_blocks'))} blocks): "
            f"correlation ({how}; REML not converged) | "
            f"{format_number(block.get('consensus_correlation'))} "
            f"({format_number(block.get('n_not_converged'))}) |"
        )
    return rows


def summary_markdown(
    analysis: str,
    summary: Mapping,
    significant: Mapping[str, int],
    structure: Sequence[tuple[str, str, float, str, float, float]] = (),
    notes: Sequence[str] = (),
) -> str:
    """The numbers a reviewer reads first, as Markdown.

    ``significant``: name -> count of features with FDR <= alpha (the test first, then each
    reported coefficient / contrast).  ``structure``: rows (matrix, component, variance fraction,
    covariate, R^2, p) of the strongest covariate association of the top components; covariate
    None for a component no sample covariate explains (p > 0.05 for all: hidden structure).
    ``notes``: statistics the reader should be warned about (:func:`reviewer_notes`).
    """
    s = dict(summary)
    norm = s.get("normalization") or {}
    dropped = list(s.get("dropped_samples") or [])
    test = s.get("test") or []
    alpha = s.get("alpha")
    lines = [
        f"# stacklm analysis `{analysis}`",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| features fitted | {format_number(s.get('n_features'))} |",
    ]
    if norm:
        lines.append(
            f"| features in the input / removed by filters | {format_number(norm.get('n_input_features'))}"
            f" / {format_number(sum((norm.get('removed_by_filter') or {}).values()))} |"
        )
    lines += [
        f"| samples | {format_number(s.get('n_samples'))} |",
        f"| dropped samples (missing formula variables) | {len(dropped)}"
        + (
            f": {', '.join(map(str, dropped[:20]))}" + (" …" if len(dropped) > 20 else "")
            if dropped
            else ""
        )
        + " |",
        f"| design columns | {', '.join(f'`{c}`' for c in s.get('design_columns') or [])} |",
        f"| test | {', '.join(f'`{t}`' for t in test)} (moderated {s.get('test_statistic', '')}"
        f", df1 = {format_number(s.get('test_df1'))}) |",
        f"| prior variance s2.prior{' (median, trend)' if s.get('s2_prior_per_feature') else ''}"
        f" | {format_number(s.get('s2_prior'))} |",
        f"| prior df df.prior{' (median, robust)' if s.get('df_prior_per_feature') else ''}"
        f" | {format_number(s.get('df_prior'))} |",
        f"| pi0 (qvalue) | {format_number(s.get('pi0'))} |",
        f"| genomic inflation λGC | {format_number(s.get('lambda_gc'))}"
        + (" (uninformative: see the notes)" if lambda_gc_uninformative(s) else "")
        + " |",
        f"| surrogate variables | {format_number(s.get('n_surrogate_variables'))} |",
        *_weighting_rows(s),
        "",
        f"## Significant features ({s.get('fdr_method', 'BH')} FDR ≤ {format_number(alpha)})",
        "",
        "| test / coefficient | features |",
        "|---|---|",
    ]
    for name, count in significant.items():
        lines.append(f"| `{name}` | {format_number(int(count))} |")
    if notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in notes]
    if structure:
        lines += [
            "",
            "## Strongest covariate association of the top principal components",
            "",
            "| matrix | component | variance | covariate | R² | p |",
            "|---|---|---|---|---|---|",
        ]
        for matrix, comp, frac, cov, r2, p in structure:
            if cov is None:
                lines.append(
                    f"| {matrix} | {comp} | {100 * frac:.1f}% | none (all p > 0.05) | – | – |"
                )
            else:
                lines.append(
                    f"| {matrix} | {comp} | {100 * frac:.1f}% | `{cov}` | {r2:.3f} | {p:.2g} |"
                )
    versions = s.get("versions") or {}
    if versions:
        lines += ["", "## Versions", "", ", ".join(f"{k} {v}" for k, v in versions.items())]
    return "\n".join(lines) + "\n"


#: below this pi0 (the fraction of null features) the genomic inflation factor says nothing
LAMBDA_GC_MIN_PI0 = 0.5

#: an SV whose R^2 with a design variable is at least this is flagged
SV_DESIGN_R2 = 0.25


def lambda_gc_uninformative(summary: Mapping) -> bool:
    """λGC compares the median test statistic with its null median; it measures inflation only
    when most features are null (pi0 high)."""
    pi0 = summary.get("pi0")
    return pi0 is not None and np.isfinite(pi0) and pi0 < LAMBDA_GC_MIN_PI0


def reviewer_notes(
    summary: Mapping, sv_associations=None, design_variables: Sequence[str] = ()
) -> list[str]:
    """Statistics that need a warning in summary.md and the report: λGC when most features are
    associated, surrogate variables strongly associated with a variable of the design, and the
    seed an estimated number of SVs depends on."""
    notes = []
    if lambda_gc_uninformative(summary):
        notes.append(
            f"λGC = {format_number(summary.get('lambda_gc'))} is not a measure of inflation here: "
            f"qvalue estimates that only {100 * float(summary['pi0']):.0f}% of the features are null "
            f"(pi0 = {format_number(summary['pi0'])}), so the median test statistic reflects true "
            "effects. λGC is informative when most features are null (pi0 close to 1)."
        )
    if sv_associations is not None and len(sv_associations):
        design = set(design_variables)
        strong = sv_associations[
            sv_associations["covariate"].astype(str).isin(design)
            & (sv_associations["r2"].astype(float) >= SV_DESIGN_R2)
        ]
        for _, row in strong.iterrows():
            notes.append(
                f"surrogate variable `{row['sv']}` is associated with the design variable "
                f"`{row['covariate']}` (R² = {float(row['r2']):.2f}, p = {float(row['p_value']):.2g}): "
                "it may absorb part of that variable's effect; compare with the analysis without SVs."
            )
    sv = summary.get("surrogate_variables") or {}
    if sv.get("requested") == "auto":
        notes.append(
            f"the number of surrogate variables ({sv.get('n')}) was estimated by num.sv "
            f"(method {sv.get('method')}, permutation seed {sv.get('seed')}); with method 'be' it "
            "can depend on the seed: set surrogate_variables to a number to fix it."
        )
    return notes


def markdown_table_html(markdown: str, title: str) -> str:
    """A minimal self-contained HTML rendering of :func:`summary_markdown` (headings, tables,
    paragraphs; inline code), for the Snakemake report."""
    import html

    def inline(text: str) -> str:
        parts = html.escape(text).split("`")
        return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))

    body, rows = [], []

    def flush():
        if rows:
            head, *rest = rows
            body.append("<table>")
            body.append("<tr>" + "".join(f"<th>{inline(c)}</th>" for c in head) + "</tr>")
            for r in rest:
                body.append("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>")
            body.append("</table>")
            rows.clear()

    for line in markdown.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if all(set(c) <= {"-", ":"} and c for c in cells):
                continue
            rows.append(cells)
            continue
        flush()
        if line.startswith("## "):
            body.append(f"<h2>{inline(line[3:])}</h2>")
        elif line.startswith("# "):
            body.append(f"<h1>{inline(line[2:])}</h1>")
        elif line.strip():
            body.append(f"<p>{inline(line)}</p>")
    flush()
    style = (
        "body{font-family:sans-serif;margin:1.5em;color:#222}"
        "table{border-collapse:collapse;margin:0.5em 0}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
        "th{background:#f0f0f0}code{background:#f6f6f6;padding:0 2px}"
    )
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{style}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
