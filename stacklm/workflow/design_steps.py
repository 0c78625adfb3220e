"""The design step of one analysis, callable without Snakemake: the base design from the sample
sheet, the surrogate variables when asked for, and the design as fitted.  Light to import (no
moderation or sva modules unless the analysis estimates SVs): the design job runs before the fit
jobs, so its start-up is on every run's critical path."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from stacklm.design.analysis import analysis_design, no_surrogate_variables
from stacklm.genotype.inputs import fam_samples, is_plink
from stacklm.io.matrix import read_matrix_header
from stacklm.io.outputs import write_json, write_tsv
from stacklm.io.samplesheet import match_samples, read_sample_sheet
from stacklm.io.store import open_binary_matrix
from stacklm.spec import AnalysisSpec, DesignInfo

_log = logging.getLogger("stacklm")


def data_samples(path, matrix_format: str | None = None) -> list[str]:
    """The sample ids of the data, in order: of the normalized store (a folder), of a PLINK
    fileset (the .fam's IIDs) or of a matrix file's header.  The store has the matrix's samples
    (normalize keeps every column), so a design without SVs can be made from the header while the
    matrix is being normalized."""
    if Path(path).is_dir():
        return list(open_binary_matrix(path, load_feature_ids=False).samples)
    if is_plink(path, matrix_format):
        return fam_samples(path)
    return list(read_matrix_header(path, matrix_format)[1])


def design_step(
    samples_path,
    sample_id: str,
    data_path,
    spec: AnalysisSpec,
    design_path,
    info_path,
    sv_path,
    associations_path,
    log: logging.Logger = _log,
    matrix_format: str | None = None,
) -> tuple[pd.DataFrame, DesignInfo]:
    """The design of an analysis as fitted, in one job: the base design from the sample sheet and the
    data's samples (:func:`stacklm.design.analysis.analysis_design`; ``info_path`` gets its
    :class:`DesignInfo`), the surrogate variables when the analysis asks for them (the store's
    values of the analysis' samples are read once, then
    :func:`stacklm.analysis.estimate_surrogate_variables`; ``sv_path`` and ``associations_path`` get
    the SV table and the SV-by-covariate associations), and ``design_path``: the base design with
    the SVs appended (TSV, sample id first).  ``data_path`` is the normalized store, or, for an
    analysis without SVs, the matrix file itself (:func:`data_samples`)."""
    sheet = read_sample_sheet(samples_path, sample_id)
    samples = data_samples(data_path, matrix_format)
    match_samples(samples, sheet, "the matrix", samples_path)
    base, info = analysis_design(sheet, samples, spec)
    if info.dropped_samples:
        log.warning(
            "dropped %d sample(s) with missing formula variables: %s",
            len(info.dropped_samples),
            ", ".join(info.dropped_samples),
        )
    log.info("design: %d samples x %d columns (%s)", *base.shape, ", ".join(base.columns))
    write_json(info.to_json(), info_path)
    if spec.surrogate.wanted:
        # here, not at the top: a design without SVs does not load the moderation and sva modules
        from stacklm.analysis import estimate_surrogate_variables

        if not Path(data_path).is_dir():
            raise ValueError("surrogate variables are estimated from the normalized store")
        store = open_binary_matrix(data_path, load_feature_ids=False)
        values = np.asarray(store.values)[:, store.columns_of([str(s) for s in base.index])]
        sv, associations = estimate_surrogate_variables(values, base, info, spec, sheet, log=log)
    else:
        sv, associations = no_surrogate_variables(base.index)
    write_tsv(sv, sv_path, index=True)
    write_tsv(associations, associations_path)
    design = base
    if sv.shape[1]:
        design = base.join(sv.loc[base.index])
        log.info("appended %d surrogate variables", sv.shape[1])
    write_tsv(design.rename_axis("sample_id"), design_path, index=True)
    return design, info
