# stacklm: stacked per-feature linear models for genomics association studies.
#   snakemake --cores 2                                  # the embedded example
#   snakemake --cores 8 --configfile my.yaml [--directory DIR]
import os
import re
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

min_version("9.0")

REPO = Path(workflow.basedir)


# A user's --configfile stands alone: the example's config (and its analyses) is only read when no
# config file is given on the command line, because Snakemake would merge the two dictionaries.
if not workflow.overwrite_configfiles:

    configfile: str(REPO / "config" / "config.yaml")


from stacklm.workflow.config import ConfigError, validate_config  # noqa: E402

try:
    # one line per problem (key, where, closest valid keys) instead of a schema dump; the schema's
    # defaults fill what the config leaves out
    _validated = validate_config(config)
except ConfigError as err:
    raise WorkflowError(str(err)) from None
config.clear()
config.update(_validated)

if not workflow.overwrite_configfiles:
    # the default config's example paths also work when run from another --directory
    for key in ("matrix", "samples", "features"):
        value = config.get(key)
        if value and not os.path.isabs(value) and not os.path.exists(value):
            if (REPO / value).exists():
                config[key] = str(REPO / value)

from stacklm.workflow.checks import ConfigCheckError, check_config  # noqa: E402
from stacklm.workflow.shutdown import skip_final_collection  # noqa: E402
from stacklm.workflow.steps import one_line_warnings  # noqa: E402

# Snakemake's process exits without the interpreter's last garbage collection (0.5 s: shutdown.py)
skip_final_collection()

try:
    with one_line_warnings():  # "stacklm warning: ..." in one line, no Python source line
        SPECS = check_config(config)  # AnalysisSpec per analysis, built once
except ConfigCheckError as err:
    raise WorkflowError(str(err)) from None

if workflow.is_main_process:
    # a run killed with SIGKILL leaves Snakemake's directory lock behind: release it when its
    # process is gone, so that the same command resumes (stacklm/runlock.py)
    from snakemake.logging import logger
    from stacklm.workflow.runlock import clear_run_owner, record_run_owner, release_stale_lock

    STALE = release_stale_lock()
    if STALE is not None:
        logger.warning(f"Removed the directory lock of an earlier run that was killed (pid {STALE}).")

    onstart:
        record_run_owner()

    onsuccess:
        clear_run_owner()

    onerror:
        clear_run_owner()
        # each failed step's cause in one line, with its log, as the last lines on the console
        from stacklm.workflow.failures import report_failures_at_exit

        report_failures_at_exit(log)


ANALYSES = list(config["analyses"])
# a local run: not a job of a cluster run (which reads this file again), and no --jobs (the
# executor is not known yet when this file is read: a cluster run is recognised by --jobs, which
# its profile sets; a local run given --jobs instead of --cores is treated the same, safely)
LOCAL_RUN = (
    workflow.local_exec and not workflow.remote_exec and workflow.resource_settings.nodes is None
)
if config["chunks"] == "auto":
    from stacklm.workflow.chunks import auto_chunks
    from stacklm.workflow.weighting.plan import uses_weighted_path

    # a local run's cores count (stacklm/workflow/chunks.py); a cluster run and its jobs use the
    # size rule only, so that every process counts the same chunks
    _CORES = None
    if LOCAL_RUN:
        try:
            _CORES = workflow.cores
        except WorkflowError:  # no --cores (a dry run): the size rule
            _CORES = None
    CHUNKS = auto_chunks(
        config["matrix"],
        config.get("matrix_format"),
        weighted=any(uses_weighted_path(s, config["input_scale"]) for s in SPECS.values()),
        cores=_CORES,
    )
else:
    CHUNKS = int(config["chunks"])

from stacklm.workflow.chunks import direct_fit_reason  # noqa: E402

# the fit jobs read a Parquet matrix directly when nothing else needs the normalized store
# (stacklm/workflow/direct.py; fit_input in config/schema.yaml)
DIRECT = direct_fit_reason(config, SPECS, CHUNKS) is None
STORE = "results/normalized/matrix"  # the normalized binary matrix (rule normalize, store path)


wildcard_constraints:
    analysis="|".join(re.escape(a) for a in ANALYSES),
    chunk=r"\d+",


include: "workflow/rules/common.smk"
include: "workflow/rules/counts_common.smk"
include: "workflow/rules/normalize.smk"
include: "workflow/rules/design.smk"
include: "workflow/rules/counts.smk"
include: "workflow/rules/fit.smk"
include: "workflow/rules/moderate.smk"
include: "workflow/rules/plots.smk"
include: "workflow/rules/genotype.smk"
include: "workflow/rules/corrected.smk"


from stacklm.workflow.targets import wants_results_tsv  # noqa: E402

RESULTS_TSV = wants_results_tsv(config["results_tsv"], config["matrix"], config.get("matrix_format"))


rule all:
    input:
        expand("results/{analysis}/results.parquet", analysis=ANALYSES),
        expand("results/{analysis}/results.tsv.gz", analysis=ANALYSES) if RESULTS_TSV else [],
        expand("results/{analysis}/summary.json", analysis=ANALYSES),
        expand("results/{analysis}/summary.md", analysis=ANALYSES),
        expand("results/{analysis}/plots/{plot}.png", analysis=ANALYSES, plot=PLOTS),
        expand("results/{analysis}/top_table.tsv", analysis=ANALYSES),
        [f"results/{a}/plots/manhattan.png" for a in ANALYSES if GENOTYPE],
        WEIGHTING_PLOT_TARGETS,  # counts / weights / block diagnostics (counts.smk)
        [
            f"results/{a}/corrected.parquet"
            for a in ANALYSES
            if SPECS[a].export_corrected
        ],
    default_target: True
