"""Checks of a workflow configuration against its inputs, run before any job: the sample sheet, the
matrix header, and every analysis' design, contrasts and test.  Each problem is one
:class:`ConfigCheckError` saying what is wrong, where, and how to fix it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from stacklm.design.analysis import analysis_design, check_test, output_names
from stacklm.design.contrasts import make_contrasts
from stacklm.genotype.inputs import check_genotype_settings, fam_samples, is_genotype_config
from stacklm.io.matrix import read_matrix_header
from stacklm.io.samplesheet import match_samples, read_sample_sheet
from stacklm.spec import AnalysisSpec
from stacklm.workflow.config import ConfigError, validate_config
from stacklm.workflow.weighting.plan import check_counts_config, check_weighting_analysis


class ConfigCheckError(ValueError):
    """The configuration does not fit its inputs."""


def check_config(config: Mapping) -> dict[str, AnalysisSpec]:
    """Check ``config`` (already validated by :func:`stacklm.workflow.config.validate_config`)
    against the sample sheet and the matrix header, before any job runs.

    Returns the :class:`AnalysisSpec` of every analysis, built once here: the rules' params and
    scripts use these settings.
    """
    try:
        config = validate_config(config)  # idempotent: the Snakefile has validated it already
    except ConfigError as err:
        raise ConfigCheckError(str(err)) from None
    if config["input_scale"] in ("beta", "dosage") and config["normalize"]["log2"]:
        raise ConfigCheckError(
            f"normalize.log2 is true but input_scale is {config['input_scale']!r}: "
            "log2 applies to expression values only; set normalize.log2: false"
        )
    for key in ("matrix", "samples", "features"):
        path = config.get(key)
        if path and not Path(path).exists():
            raise ConfigCheckError(
                f"{key}: {path} does not exist (looked for {Path(path).resolve()} from the working "
                f"directory {Path.cwd()}); relative paths are relative to the working directory "
                "(snakemake --directory)"
            )
    try:
        check_counts_config(config)  # input_scale: counts and the settings that apply
        check_genotype_settings(config)  # PLINK input: its files and the settings that apply
        if is_genotype_config(config):
            matrix_samples = fam_samples(config["matrix"])  # the .fam's IIDs
        else:
            _, matrix_samples = read_matrix_header(config["matrix"], config.get("matrix_format"))
        sheet = read_sample_sheet(config["samples"], config["sample_id"])
        match_samples(matrix_samples, sheet, config["matrix"], config["samples"])
    except ValueError as err:
        raise ConfigCheckError(str(err)) from None
    except OSError as err:
        raise ConfigCheckError(f"cannot read input: {err}") from None
    out = {}
    for name, settings in config["analyses"].items():
        try:
            spec = AnalysisSpec.from_settings(name, settings)
            design, _ = analysis_design(sheet, matrix_samples, spec)
            contrasts = spec.contrasts_dict
            if contrasts:
                make_contrasts(contrasts, list(design.columns))
            output_names(list(design.columns), contrasts)
            check_test(list(spec.test), list(design.columns), contrasts)
            check_weighting_analysis(spec, config["input_scale"], sheet, design)  # counts, blocks
            n_sv = spec.surrogate.requested
            if isinstance(n_sv, int) and len(design) - design.shape[1] - n_sv < 1:
                raise ValueError(
                    f"{len(design)} samples leave no residual degrees of freedom for "
                    f"{design.shape[1]} design columns plus {n_sv} surrogate variables"
                )
        except ConfigError as err:
            raise ConfigCheckError(str(err)) from None
        except (ValueError, KeyError) as err:
            raise ConfigCheckError(f"analysis {name!r}: {error_message(err)}") from None
        out[name] = spec
    return out


def error_message(err: Exception) -> str:
    """The text of an error (a KeyError's message without the quotes its str() adds)."""
    if isinstance(err, KeyError) and err.args:
        return str(err.args[0])
    return str(err)
