"""The workflow configuration: validated against ``config/schema.yaml`` (the one place defaults are
written), completed with the schema's defaults, and every problem reported in one line naming the
key, where it is, and the closest valid keys.

The workflow (Snakefile) and the library (:func:`stacklm.run_analysis`) both go through
:func:`validate_config` / :func:`validate_analysis`, so a notebook runs what the workflow runs.
"""

from __future__ import annotations

import copy
import difflib
import functools
from collections.abc import Mapping
from pathlib import Path

import jsonschema
import yaml

from stacklm.genotype.inputs import fill_moderation_default, is_genotype_config


class ConfigError(ValueError):
    """A configuration that does not follow the schema; the message is one line."""


def schema_path() -> Path:
    """``config/schema.yaml``: beside the package in a checkout, or shipped inside it."""
    here = Path(__file__).resolve().parent
    for candidate in (
        here.parents[1] / "config" / "schema.yaml",  # a checkout (or an editable install)
        here.parent / "workflow_files" / "config" / "schema.yaml",  # a wheel
    ):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("config/schema.yaml is missing from the stacklm installation")


@functools.cache
def load_schema() -> dict:
    return yaml.safe_load(schema_path().read_text())


def analysis_schema() -> dict:
    """The schema of one ``analyses.<name>`` entry."""
    return load_schema()["properties"]["analyses"]["additionalProperties"]


def _fill_defaults(instance, schema):
    """Add the schema's defaults to ``instance`` (in place), recursively through objects."""
    if not isinstance(instance, dict) or schema.get("type") != "object":
        return
    for key, sub in (schema.get("properties") or {}).items():
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if key in instance:
            _fill_defaults(instance[key], sub)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key, value in instance.items():
            if key not in (schema.get("properties") or {}):
                _fill_defaults(value, extra)


def _where(path) -> str:
    return ".".join(str(p) for p in path) if path else "the top level"


def _message(err: jsonschema.ValidationError, schema: dict, what: str) -> str:
    """One line for a validation error: the key, where it is, and what is allowed there."""
    where = _where(err.absolute_path)
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        allowed = list((err.schema.get("properties") or {}).keys())
        unknown = [k for k in err.instance if k not in allowed]
        if unknown and allowed:
            key = unknown[0]
            close = difflib.get_close_matches(str(key), allowed, n=3, cutoff=0.5)
            hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
            return (
                f"{what}: unknown key {key!r} in {where}; {hint}"
                f"valid keys there: {', '.join(allowed)}"
            )
    if err.validator == "required":
        return f"{what}: {err.message} in {where}"
    if err.validator == "enum":
        options = ", ".join(map(repr, err.validator_value))
        return f"{what}: {where} is {err.instance!r}; use one of {options}"
    if err.validator == "oneOf" and err.context:
        options = [c.message for c in err.context]
        return f"{what}: {where} is {err.instance!r}, which is not valid ({'; or '.join(options)})"
    if err.validator == "type":
        return f"{what}: {where} is {err.instance!r}; it must be of type {err.validator_value}"
    return f"{what}: {where}: {err.message}"


def _validate(instance: dict, schema: dict, what: str) -> dict:
    validator = jsonschema.Draft202012Validator(schema)
    # the shallowest problem first; at one place a misspelled key before the required key it hides
    errors = sorted(
        validator.iter_errors(instance),
        key=lambda e: (len(e.absolute_path), e.validator != "additionalProperties", str(e)),
    )
    if errors:
        raise ConfigError(_message(errors[0], schema, what))
    _fill_defaults(instance, schema)
    return instance


def validate_config(config: Mapping, what: str = "config") -> dict:
    """A copy of the workflow configuration, validated and completed with the schema's defaults."""
    out = copy.deepcopy(dict(config))
    out = _validate(out, load_schema(), what)
    # defaults that depend on the input (moderation.method: none for PLINK genotypes)
    for settings in (out.get("analyses") or {}).values():
        fill_moderation_default(settings, is_genotype_config(out))
    return resolve_scale_defaults(out)


def filter_by_expr_settings(value) -> dict | None:
    """``analyses.<name>.filter_by_expr`` as the parameters of edgeR's filterByExpr (the schema's
    defaults for those not given), or None when it is off (false / null)."""
    if value is None or value is False:
        return None
    branches = analysis_schema()["properties"]["filter_by_expr"]["oneOf"]
    branch = next(b for b in branches if b.get("type") == "object")
    out = {k: sub["default"] for k, sub in branch["properties"].items()}
    if isinstance(value, Mapping):
        out.update(value)
    return out


def resolve_scale_defaults(config: dict) -> dict:
    """The schema's null defaults that depend on ``input_scale: counts``, made concrete (in place,
    idempotent): ``normalize.method`` (TMM for counts, none otherwise), per analysis
    ``filter_by_expr`` (for counts true, i.e. filterByExpr's parameters; false otherwise) and
    ``weights`` (voom for counts, none otherwise)."""
    counts = config.get("input_scale") == "counts"
    normalize = config.get("normalize")
    if isinstance(normalize, dict) and normalize.get("method") is None:
        normalize["method"] = "TMM" if counts else "none"
    for settings in (config.get("analyses") or {}).values():
        if not isinstance(settings, dict):
            continue
        fbe = settings.get("filter_by_expr")
        settings["filter_by_expr"] = (
            filter_by_expr_settings(counts if fbe is None else fbe) or False
        )
        if settings.get("weights") is None:
            settings["weights"] = "voom" if counts else "none"
    return config


def validate_analysis(settings: Mapping, name: str = "analysis") -> dict:
    """A copy of one analysis' settings (an ``analyses.<name>`` entry), validated and completed with
    the schema's defaults: what :func:`stacklm.run_analysis` accepts."""
    if not isinstance(settings, Mapping):
        raise ConfigError(f"analysis {name!r}: settings must be a mapping, not {type(settings)}")
    out = copy.deepcopy(dict(settings))
    out = _validate(out, analysis_schema(), f"analysis {name!r}")
    # outside a workflow config the input is not known: a method left null is eBayes (a workflow
    # config's analyses arrive here with the method validate_config chose for their input)
    return fill_moderation_default(out, genotype=False)


def validate_analysis_part(key: str, value, name: str = "analysis") -> dict:
    """One block of an analysis' settings (``moderation``, ``decide``, ``threshold``), validated and
    completed with the schema's defaults: for library calls that take only that block."""
    schema = analysis_schema()["properties"][key]
    out = copy.deepcopy(dict(value or {}))
    return _validate(out, schema, f"analysis {name!r} {key}")
