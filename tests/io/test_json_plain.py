"""numpy values to plain JSON (write_json, the weighting state's history)."""

from __future__ import annotations

import json
import math

import numpy as np

from stacklm.io.atomic import json_plain, write_json


def test_numpy_values_become_plain_python_and_non_finite_floats_strict_json(tmp_path):
    obj = {1: np.float64(0.5), "a": (np.int64(3), [np.array([1.0, np.nan])]), "b": np.inf}
    plain = json_plain(obj)
    assert list(plain) == ["1", "a", "b"] and type(plain["1"]) is float
    assert plain["a"][0] == 3 and type(plain["a"][0]) is int
    assert plain["a"][1][0][0] == 1.0 and math.isnan(plain["a"][1][0][1])  # kept without finite
    assert plain["b"] == math.inf
    strict = json_plain(obj, finite=True)
    assert strict["a"][1][0] == [1.0, None] and strict["b"] == "Infinity"
    write_json({"x": np.float32(-np.inf), "y": np.nan}, tmp_path / "o.json")
    assert json.loads((tmp_path / "o.json").read_text()) == {"x": "-Infinity", "y": None}
