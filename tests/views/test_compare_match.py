"""Matching configurations: canonical key values and the key columns of the roles."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from rpbench.views.compare_match import canonical, plain


def test_canonical_values_match_across_types() -> None:
    assert canonical(1) == canonical(1.0) == canonical("1") == canonical(" 1.0 ") == canonical(np.int64(1)) == "1"
    assert canonical(None) == canonical(math.nan) == canonical("") == canonical("nan") == canonical(pd.NA) == ""
    assert canonical(True) == canonical(np.True_) == "True"
    assert canonical(0.1) == canonical("0.1") == "0.1" and canonical("cos") == "cos"
    assert canonical(0.1) != canonical(0.10000001)


def test_plain_values_for_a_change() -> None:
    assert plain(np.int64(2)) == 2 and type(plain(np.int64(2))) is int
    assert plain(math.nan) is None and plain(pd.NA) is None and plain("cos") == "cos"
