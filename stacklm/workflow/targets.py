"""Which optional outputs the default target ``all`` asks for, decided when the workflow is read.

``results_tsv``: every analysis writes ``results/<analysis>/results.parquet`` (the primary table:
typed columns, read in a fraction of a second at 10^6 features).  The same table as gzipped TSV,
``results.tsv.gz``, is made from it by its own job (rule ``results_tsv``) when

* ``results_tsv: true``, or
* ``results_tsv: auto`` (the default) and the input is small: at most :data:`RESULTS_TSV_AUTO_MB`
  of values as float64, estimated from the matrix file as ``chunks: auto`` does (about 300,000
  features x 100 samples; the example, the counts and the SNP examples all get one).

Formatting ~55 columns as text for 10^6 features costs more than fitting them, so large inputs do
not pay for it unless asked.  Any run can still ask for the file by name
(``snakemake results/A/results.tsv.gz``), since the rule is always there.
"""

from __future__ import annotations

from stacklm.workflow.chunks import estimated_values_mb

#: ``results_tsv: auto`` writes the TSV for inputs of at most this many MB as float64
RESULTS_TSV_AUTO_MB = 256


def wants_results_tsv(setting, matrix, matrix_format: str | None = None) -> bool:
    """Whether the default target includes ``results.tsv.gz`` (``setting``: true, false or
    "auto")."""
    if setting == "auto":
        return estimated_values_mb(matrix, matrix_format) <= RESULTS_TSV_AUTO_MB
    return bool(setting)
