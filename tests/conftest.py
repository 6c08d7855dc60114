import os

# Tests must not depend on the number of BLAS threads the machine offers.
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
