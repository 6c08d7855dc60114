import os

# Tests must not depend on the number of BLAS threads the machine offers.
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

from hypothesis import settings  # noqa: E402

# Same examples on every run: CI stays reproducible, and no .hypothesis database is written.
settings.register_profile("tinynn", derandomize=True, database=None)
settings.load_profile("tinynn")
