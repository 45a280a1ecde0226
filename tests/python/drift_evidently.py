"""Evidently's PSI and Jensen-Shannon distance and scipy's Kolmogorov-Smirnov statistic (the
one Evidently's KS test is built on) of each reference/current pair in a JSON file, for
tests/drift.rs to compare with Bazaar's.

  python drift_evidently.py pairs.json  ->  [{"psi": .., "js": .., "ks": ..}, ...] on stdout
"""

import json
import sys

import pandas as pd
from evidently.legacy.calculations.stattests import jensenshannon_stat_test, psi_stat_test
from evidently.legacy.core import ColumnType
from scipy.stats import ks_2samp

out = []
for pair in json.load(open(sys.argv[1])):
    r, c = pd.Series(pair["reference"], dtype="float64"), pd.Series(pair["current"], dtype="float64")
    out.append({
        "psi": float(psi_stat_test(r, c, ColumnType.Numerical, None).drift_score),
        "js": float(jensenshannon_stat_test(r, c, ColumnType.Numerical, None).drift_score),
        "ks": float(ks_2samp(r, c).statistic),
    })
json.dump(out, sys.stdout)
