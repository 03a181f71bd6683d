"""Indexing: `x[idx]` (basic and integer-array indexing), `x.at[idx].set/add/multiply`,
the gather and scatter-add primitives, iota, take, take_along_axis.

(To be completed: see issue 2.)
"""

from __future__ import annotations


def getitem(x, idx):
    raise NotImplementedError("indexing is being written (issue 2)")


def index_update(x, idx, values, mode):
    raise NotImplementedError("x.at[...] is being written (issue 2)")
