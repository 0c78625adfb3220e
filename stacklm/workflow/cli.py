"""The ``stacklm`` command, for users who do not know Snakemake (Snakemake stays the primary
interface; ``stacklm run`` does exactly what ``snakemake`` does with the same options).

    stacklm init DIR --matrix PATH             # starter config.yaml + samples.tsv template in DIR
    stacklm run --config my.yaml --cores 4 [--directory DIR] [--profile P] [--dry-run]
                [-- SNAKEMAKE_OPTIONS]

``run`` calls Snakemake's Python API (:class:`snakemake.api.SnakemakeApi`, Snakemake 9).  Profiles
are read by Snakemake's own argument parser (so a profile means what it means to ``snakemake``,
including the workflow profile ``profiles/default`` that Snakemake applies automatically), and the
parsed options are handed to the API.  Options after ``--`` go to Snakemake unchanged, e.g.
``-- --default-resources slurm_account=abc slurm_partition=short``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml

from stacklm.io.matrix import read_matrix_header

#: Snakemake options (argparse dests) that ``stacklm run`` hands to the API; any other option that
#: a profile or the pass-through arguments set is refused with a message, never silently ignored.
_HANDLED = {
    # what stacklm run sets itself
    "snakefile",
    "configfile",
    "directory",
    "cores",
    "dryrun",
    "profile",
    "workflow_profile",
    "targets",
    # resources
    "jobs",
    "local_cores",
    "max_threads",
    "resources",
    "set_threads",
    "set_resources",
    "default_resources",
    # DAG
    "forceall",
    "force",
    "forcerun",
    "until",
    "omit_from",
    "rerun_incomplete",
    "rerun_triggers",
    "allowed_rules",
    # execution
    "executor",
    "keep_going",
    "latency_wait",
    "retries",
    "nolock",
    "ignore_incomplete",
    "keep_incomplete",
    "max_status_checks_per_second",
    "seconds_between_status_checks",
    "max_jobs_per_second",
    "max_jobs_per_timespan",
    "envvars",
    "use_conda",
    "conda_prefix",
    "software_deployment_method",
    # output
    "printshellcmds",
    "show_failed_logs",
    "quiet",
    "verbose",
    "nocolor",
}

STARTER_SHEET_COLUMNS = ("sample_id", "group")


class CliError(Exception):
    """A usage problem, reported as one line."""


# ---------------------------------------------------------------------------------------------
# locating the workflow


def _is_workflow(snakefile: Path) -> bool:
    return snakefile.is_file() and (snakefile.parent / "workflow" / "rules").is_dir()


def checkout_snakefile() -> Path | None:
    """The Snakefile of the source checkout this package was imported from (an editable install or
    a run from the repository), or None: a checkout has pyproject.toml beside Snakefile."""
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and _is_workflow(root / "Snakefile"):
        return root / "Snakefile"
    return None


def packaged_snakefile() -> Path:
    """Where a built package (``pip install .``, a wheel) has its copy of the workflow (setup.py)."""
    return Path(__file__).resolve().parents[1] / "workflow_files" / "Snakefile"


def find_snakefile(explicit=None) -> Path:
    """The stacklm ``Snakefile``: ``explicit``, else ``$STACKLM_SNAKEFILE``, else the checkout this
    package was imported from (an editable install or a run from the repository), else the copy of
    the workflow installed with the package (``stacklm/workflow_files``)."""
    if explicit or os.environ.get("STACKLM_SNAKEFILE"):
        where = "--snakefile" if explicit else "$STACKLM_SNAKEFILE"
        path = Path(explicit or os.environ["STACKLM_SNAKEFILE"])
        if _is_workflow(path):
            return path.resolve()
        raise CliError(
            f"no stacklm workflow at {path} ({where}): a stacklm Snakefile has workflow/rules/ "
            "beside it; give the path of the repository's Snakefile, or leave out "
            f"{where} to use the workflow installed with stacklm"
        )
    checkout = checkout_snakefile()
    if checkout is not None:
        return checkout
    packaged = packaged_snakefile()
    if _is_workflow(packaged):
        return packaged
    raise CliError(
        f"the stacklm workflow is missing from this installation ({packaged.parent} has no "
        "Snakefile and workflow/rules/); reinstall stacklm from its source folder with "
        "`pip install .` (it copies the workflow into the package), or pass "
        "--snakefile /path/to/stacklm/Snakefile (or set STACKLM_SNAKEFILE)"
    )


# ---------------------------------------------------------------------------------------------
# stacklm run


def snakemake_arguments(args, snakefile: Path) -> list[str]:
    """The ``snakemake`` command line equivalent to ``stacklm run`` (without the program name)."""
    configfile = Path(args.config).resolve()
    if not configfile.is_file():
        raise CliError(f"config file {args.config} does not exist")
    argv = ["--snakefile", str(snakefile), "--configfile", str(configfile)]
    if args.cores is not None:
        argv += ["--cores", str(args.cores)]
    if args.directory:
        argv += ["--directory", str(Path(args.directory).resolve())]
    for profile in args.profile or []:
        if Path(profile).exists():
            profile = str(Path(profile).resolve())
        elif (snakefile.parent / profile).is_dir():
            # the workflow's own profiles (profiles/slurm) also when run outside the checkout
            profile = str((snakefile.parent / profile).resolve())
        argv += ["--profile", profile]
    if args.dry_run:
        argv.append("--dry-run")
    return argv + list(args.snakemake_options)


def parse_snakemake_options(argv: list[str]):
    """Parse a snakemake command line with Snakemake's own parser, profiles included (the workflow
    profile ``profiles/default`` beside the Snakefile too, as ``snakemake`` does)."""
    from snakemake.cli import parse_args

    return parse_args(argv)


def _unhandled(options, executor: str) -> list[str]:
    """Options set (by a profile or after ``--``) that ``stacklm run`` would not pass on: those that
    differ from Snakemake's defaults, other than the handled ones and the executor's own."""
    from snakemake.cli import get_argument_parser

    defaults = get_argument_parser().parse_args([])
    prefix = executor.replace("-", "_") + "_"
    return [
        "--" + dest.replace("_", "-")
        for dest, value in sorted(vars(options).items())
        if dest not in _HANDLED
        and not dest.startswith(prefix)
        and hasattr(defaults, dest)
        and value != getattr(defaults, dest)
    ]


def run_workflow(argv: list[str]) -> bool:
    """Run Snakemake through its Python API with the options of the command line ``argv``."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (
        ConfigSettings,
        DAGSettings,
        DeploymentSettings,
        ExecutionSettings,
        OutputSettings,
        RemoteExecutionSettings,
        ResourceSettings,
        SchedulingSettings,
    )
    from snakemake_interface_executor_plugins.registry import ExecutorPluginRegistry
    from snakemake_interface_executor_plugins.settings import DeploymentMethod

    _, o = parse_snakemake_options(argv)
    executor = o.executor or "local"
    unhandled = _unhandled(o, executor)
    if unhandled:
        raise CliError(
            f"stacklm run does not pass on {', '.join(unhandled)} (from a profile or after --); "
            "run snakemake itself for these options"
        )
    registry = ExecutorPluginRegistry()
    try:
        plugin = registry.get_plugin(executor)
    except Exception as err:  # noqa: BLE001 - the registry's own message names the fix
        raise CliError(f"executor {executor!r}: {err}") from None
    executor_settings = plugin.get_settings(o)
    cores, jobs = o.cores, o.jobs
    if cores is None:
        if o.dryrun:
            cores = 1
        elif plugin.common_settings.local_exec:
            cores, jobs = jobs, None
    if cores is None and plugin.common_settings.local_exec:
        raise CliError("give the number of CPU cores to use: --cores N")
    deployment = set(o.software_deployment_method or ())
    if o.use_conda:
        deployment.add(DeploymentMethod.CONDA)
    output = OutputSettings(
        dryrun=o.dryrun,
        printshellcmds=o.printshellcmds,
        nocolor=o.nocolor,
        quiet=o.quiet,
        verbose=o.verbose,
        show_failed_logs=o.show_failed_logs,
        stdout=o.dryrun,
    )
    with SnakemakeApi(output) as api:
        try:
            workflow = api.workflow(
                resource_settings=ResourceSettings(
                    cores=cores,
                    nodes=jobs,
                    local_cores=o.local_cores,
                    max_threads=o.max_threads,
                    resources=o.resources,
                    overwrite_threads=o.set_threads,
                    overwrite_resources=o.set_resources,
                    default_resources=o.default_resources,
                ),
                config_settings=ConfigSettings(configfiles=o.configfile),
                deployment_settings=DeploymentSettings(
                    deployment_method=deployment, conda_prefix=o.conda_prefix
                ),
                snakefile=o.snakefile,
                workdir=o.directory,
            )
            dag = workflow.dag(
                dag_settings=DAGSettings(
                    targets=o.targets,
                    forcetargets=o.force,
                    forceall=o.forceall,
                    forcerun=o.forcerun,
                    until=o.until,
                    omit_from=o.omit_from,
                    force_incomplete=o.rerun_incomplete,
                    allowed_rules=o.allowed_rules,
                    rerun_triggers=o.rerun_triggers,
                )
            )
            dag.execute_workflow(
                executor=executor,
                pseudo_executor="dryrun" if o.dryrun else None,
                execution_settings=ExecutionSettings(
                    keep_going=o.keep_going,
                    standalone=True,
                    lock=not o.nolock,
                    ignore_incomplete=o.ignore_incomplete,
                    keep_incomplete=o.keep_incomplete,
                    latency_wait=o.latency_wait,
                    retries=o.retries,
                ),
                remote_execution_settings=RemoteExecutionSettings(
                    max_status_checks_per_second=o.max_status_checks_per_second,
                    seconds_between_status_checks=o.seconds_between_status_checks,
                    envvars=o.envvars,
                ),
                scheduling_settings=SchedulingSettings(
                    max_jobs_per_second=o.max_jobs_per_second,
                    max_jobs_per_timespan=o.max_jobs_per_timespan,
                ),
                executor_settings=executor_settings,
            )
        except Exception as err:  # noqa: BLE001 - Snakemake prints its own errors
            api.print_exception(err)
            return False
    return True


def cmd_run(args) -> int:
    snakefile = find_snakefile(args.snakefile)
    argv = snakemake_arguments(args, snakefile)
    print("stacklm run = snakemake " + " ".join(argv), file=sys.stderr, flush=True)
    ok = run_workflow(argv)
    if not ok:
        print("stacklm run: the workflow failed (see the messages above)", file=sys.stderr)
        return 1
    if not args.dry_run:
        config = yaml.safe_load(Path(args.config).read_text()) or {}
        base = Path(args.directory or ".")
        for name in config.get("analyses") or {}:
            print(f"results: {base / 'results' / name / 'results.parquet'}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------------------------
# stacklm init

STARTER_CONFIG = """\
# stacklm configuration (written by `stacklm init`).  Every key is described in the README
# ("Configuration") and in config/schema.yaml.  Run it with
#   stacklm run --config {config} --cores 4
# or  snakemake --cores 4 --configfile {config} --directory DIR
matrix: {matrix}     # features x samples, {n_samples} samples
{matrix_format}samples: {samples}    # one row per sample: fill in the columns the formula uses
sample_id: sample_id
features: null                 # optional feature annotation table (feature id first)
input_scale: expression        # expression | beta (methylation -> M-values) | dosage (0..2)
normalize: {{log2: false, offset: 1, method: none}}   # method: none | quantile | cyclicloess
filter: {{max_missing: 0.5}}     # also min_average, min_variance
chunks: 8                      # parallel fit jobs
fdr: {{method: BH, alpha: 0.05}}
analyses:
  main:
    # the column 'group' of the sample sheet, with the values 'control' (the reference) and 'case';
    # add covariates as columns of the sheet and terms of the formula, e.g. "~ group + sex + age"
    formula: "~ group"
    levels: {{group: [control, case]}}
    test: groupcase            # design column(s) or contrast(s) tested (several: moderated F)
    contrasts: {{}}
    surrogate_variables: 0     # 0, N or auto
    moderation: {{trend: false, robust: false}}
"""


def init_project(directory, matrix, matrix_format=None, force: bool = False) -> tuple[Path, Path]:
    """Write ``config.yaml`` and a sample sheet template ``samples.tsv`` (the matrix's sample ids,
    an empty ``group`` column) into ``directory``; returns their paths."""
    directory = Path(directory)
    matrix = Path(matrix).resolve()
    if not matrix.is_file():
        raise CliError(f"matrix {matrix} does not exist")
    try:
        _, samples = read_matrix_header(matrix, matrix_format)
    except ValueError as err:
        raise CliError(f"cannot read the matrix header: {err}") from None
    config_path = directory / "config.yaml"
    sheet_path = directory / "samples.tsv"
    existing = [p for p in (config_path, sheet_path) if p.exists()]
    if existing and not force:
        raise CliError(
            f"{', '.join(map(str, existing))} already exist(s); use --force to overwrite"
        )
    directory.mkdir(parents=True, exist_ok=True)
    rows = ["\t".join(STARTER_SHEET_COLUMNS)] + [f"{s}\t" for s in samples]
    sheet_path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    config_path.write_text(
        STARTER_CONFIG.format(
            config=config_path,
            matrix=_yaml_scalar(str(matrix)),
            matrix_format=f"matrix_format: {matrix_format}\n" if matrix_format else "",
            n_samples=len(samples),
            samples=_yaml_scalar(str(sheet_path.resolve())),
        ),
        encoding="utf-8",
    )
    return config_path, sheet_path


def _yaml_scalar(text: str) -> str:
    return yaml.safe_dump(text, default_style=None).splitlines()[0] if text else "''"


def cmd_init(args) -> int:
    config_path, sheet_path = init_project(
        args.directory, args.matrix, args.matrix_format, force=args.force
    )
    n = sum(1 for _ in open(sheet_path, encoding="utf-8")) - 1
    print(
        f"wrote {config_path} and {sheet_path} ({n} samples).\n"
        f"Next: fill the 'group' column of {sheet_path} (control / case; add covariate columns as "
        f"needed), adjust the analysis in {config_path}, then\n"
        f"  stacklm run --config {config_path} --cores 4 --directory {args.directory}"
    )
    return 0


# ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stacklm",
        description="Stacked per-feature linear models (limma/sva/qvalue numbers) with a Snakemake "
        "workflow. `stacklm run` is a front end to `snakemake`; see the README.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run",
        help="run the workflow on a config file",
        description="Run the stacklm workflow (Snakemake's Python API). Options after -- are "
        "passed to Snakemake, e.g. -- --default-resources slurm_account=abc.",
    )
    run.add_argument("--config", required=True, help="the configuration (YAML)")
    run.add_argument("--cores", help="CPU cores to use (a number or 'all')")
    run.add_argument("--directory", help="working directory for results/ and logs/")
    run.add_argument(
        "--profile",
        action="append",
        help="a Snakemake profile, e.g. profiles/slurm (repeatable)",
    )
    run.add_argument("--dry-run", "-n", action="store_true", help="only show the jobs")
    run.add_argument(
        "--snakefile",
        help="the stacklm Snakefile (default: this checkout's, else the one installed with stacklm)",
    )
    run.set_defaults(func=cmd_run)
    init = sub.add_parser(
        "init",
        help="write a starter config and sample sheet template for a matrix",
        description="Write DIR/config.yaml and DIR/samples.tsv (sample ids from the matrix header).",
    )
    init.add_argument("directory", help="project directory (created if needed)")
    init.add_argument("--matrix", required=True, help="features x samples matrix")
    init.add_argument(
        "--matrix-format", choices=["tsv", "csv", "parquet"], help="default: from the extension"
    )
    init.add_argument("--force", action="store_true", help="overwrite existing files")
    init.set_defaults(func=cmd_init)
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    passthrough: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, passthrough = argv[:cut], argv[cut + 1 :]
    args = build_parser().parse_args(argv)
    args.snakemake_options = passthrough
    if passthrough and args.command != "run":
        print("stacklm: options after -- are for `stacklm run` only", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except CliError as err:
        print(f"stacklm {args.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
