"""Domain entry for nn's primitive, relu (funconv/ops/special.py; `fc.nn.relu` wraps it)."""

from __future__ import annotations

import numpy as np

from domains import DOMAINS, Case, Domain, away, draw_shape, rng


def _relu_sample(data, dtype):
    # away from 0: the kink would make central differences straddle two slopes
    return Case((away(rng(data), draw_shape(data), dtype),))


DOMAINS["relu"] = Domain(_relu_sample, numpy=lambda x: np.maximum(x, 0), rtol=0, atol=0)
