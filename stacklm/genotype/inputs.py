"""PLINK genotype input in the workflow configuration: recognising it, its three files, its sample
ids, the settings that go with it, and the defaults that depend on it.

``matrix: data.bed`` (or ``data`` / ``data.bim`` with ``matrix_format: plink``) names a PLINK 1
binary fileset: ``data.bed``, ``data.bim`` and ``data.fam`` side by side.  Everything here reads at
most the .fam (no numpy work), so the Snakefile can call it while it builds the rules.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

#: ``moderation.method`` when the config leaves it unset (null): ordinary statistics for genotypes
#: (the t of plink2 --glm / R lm), limma's eBayes for every other input
DEFAULT_MODERATION = {True: "none", False: "ebayes"}

#: filter keys that only genotypes have, and keys that only matrices of values have
GENOTYPE_FILTERS = ("min_maf", "min_hwe_p")
MATRIX_FILTERS = ("min_average", "min_variance")


def is_plink(matrix, matrix_format: str | None = None) -> bool:
    """True when the configured input is a PLINK 1 binary fileset: ``matrix_format: plink``, or a
    ``matrix`` ending in ``.bed`` with no format given.  Looks at the names only."""
    if matrix_format is not None:
        return str(matrix_format).lower() == "plink"
    return str(matrix or "").lower().endswith(".bed")


def plink_prefix(matrix) -> str:
    """``data.bed`` / ``data.bim`` / ``data.fam`` / ``data`` -> ``data``."""
    path = os.fspath(matrix)
    root, ext = os.path.splitext(path)
    return root if ext.lower() in (".bed", ".bim", ".fam") else path


def plink_files(matrix) -> dict[str, str]:
    """The fileset's paths: ``{"bed": ..., "bim": ..., "fam": ...}``."""
    prefix = plink_prefix(matrix)
    return {ext: f"{prefix}.{ext}" for ext in ("bed", "bim", "fam")}


def is_genotype_config(config: Mapping) -> bool:
    """Whether a (validated) workflow config reads PLINK genotypes."""
    return is_plink(config.get("matrix"), config.get("matrix_format"))


def fill_moderation_default(analysis: dict, genotype: bool) -> dict:
    """The one place where ``moderation.method``'s input-dependent default is set: a method left
    null (the schema's default) becomes ``none`` for PLINK genotype input and ``ebayes`` otherwise.
    ``analysis`` is an ``analyses.<name>`` entry already completed with the schema's defaults
    (changed in place and returned)."""
    moderation = analysis.setdefault("moderation", {})
    if moderation.get("method") is None:
        moderation["method"] = DEFAULT_MODERATION[bool(genotype)]
    return analysis


def fam_samples(matrix) -> list[str]:
    """The sample ids of a PLINK fileset: the .fam's IIDs (column 2), in file order."""
    from stacklm.genotype.plink import read_fam  # here: pandas, which matrix inputs do not need

    return [str(s) for s in read_fam(plink_files(matrix)["fam"])["iid"]]


def check_genotype_settings(config: Mapping) -> None:
    """Settings that do not fit the input (one-line ValueError naming the key and the fix): for PLINK
    input, normalization and the value filters (``min_average``, ``min_variance``) do not apply,
    and the three files must exist; for other input the genotype filters (``min_maf``,
    ``min_hwe_p``) do not apply."""
    filters = config.get("filter") or {}
    genotype = is_genotype_config(config)
    if not genotype:
        for key in GENOTYPE_FILTERS:
            if filters.get(key) is not None:
                raise ValueError(
                    f"filter.{key} applies to PLINK genotype input (matrix: data.bed); the matrix "
                    f"{config.get('matrix')} is not one: remove filter.{key}"
                )
        return
    for key in MATRIX_FILTERS:
        if filters.get(key) is not None:
            raise ValueError(
                f"filter.{key} does not apply to PLINK genotype input ({config.get('matrix')}); "
                "use filter.min_maf, filter.max_missing and filter.min_hwe_p, or remove it"
            )
    norm = config.get("normalize") or {}
    if norm.get("method", "none") != "none" or norm.get("log2"):
        raise ValueError(
            f"normalize.method / normalize.log2 do not apply to PLINK genotype input "
            f"({config.get('matrix')}: allele counts 0/1/2); set normalize.method: none and "
            "normalize.log2: false"
        )
    if config.get("input_scale", "expression") not in ("expression", "dosage"):
        raise ValueError(
            f"input_scale is {config.get('input_scale')!r} but {config.get('matrix')} is a PLINK "
            "fileset of allele counts: remove input_scale (or set it to dosage)"
        )
    for ext, path in plink_files(config["matrix"]).items():
        if not Path(path).is_file():
            raise ValueError(
                f"matrix: the PLINK fileset needs {path} (the .{ext} beside the .bed; looked for "
                f"{Path(path).resolve()}); put data.bed, data.bim and data.fam in one folder"
            )
