import os
import sys

# shared test helpers (the primitive domain table) are imported by plain name
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "property"))

from hypothesis import HealthCheck, settings

# CI: a bounded number of examples keeps the suite within minutes, and the same examples
# every run (derandomize), so a landing never hinges on a lucky draw; the "dev" and
# "thorough" profiles explore new examples on every run and find what CI's set misses.
settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=50, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=500, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

# the convolution cost model uses its documented default rates: the choices the tests see do
# not depend on this machine's speed (funconv/passes/conv_cost.py)
import funconv as fc  # noqa: E402

fc.config.update("conv_calibration", False)
