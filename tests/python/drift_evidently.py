"""Evidently's PSI and Jensen-Shannon distance and scipy's Kolmogorov-Smirnov statistic (the
one Evidently's KS test is built on) of each reference/current pair in a JSON file, for
tests/suite/drift.rs to compare with Bazaar's.

  python drift_evidently.py pairs.json  ->  [{"psi": .., "js": .., "ks": ..}, ...] on stdout

A pair marked "numeric" is a feature whose quantiles have few distinct values though the data
they summarise (and today's) has many, such as a share most customers hold at 1: Evidently
decides between bins by value and Sturges bins on the reference's distinct values, so its
reference is told how many the summarised data has, as Bazaar is.
"""

import json
import sys

import pandas as pd
from evidently.legacy.calculations.stattests import jensenshannon_stat_test, psi_stat_test
from evidently.legacy.core import ColumnType
from scipy.stats import ks_2samp

class Summarised(pd.Series):
    """Reference quantiles standing for data with more than 20 distinct values."""

    @property
    def _constructor(self):
        return pd.Series

    def nunique(self, dropna=True):
        return max(super().nunique(dropna), 21)


out = []
for pair in json.load(open(sys.argv[1])):
    kind = Summarised if pair["numeric"] else pd.Series
    r, c = kind(pair["reference"], dtype="float64"), pd.Series(pair["current"], dtype="float64")
    out.append({
        "psi": float(psi_stat_test(r, c, ColumnType.Numerical, None).drift_score),
        "js": float(jensenshannon_stat_test(r, c, ColumnType.Numerical, None).drift_score),
        "ks": float(ks_2samp(r, c).statistic),
    })
json.dump(out, sys.stdout)
