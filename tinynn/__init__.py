"""tinynn: a small, fast, readable deep-learning framework on numpy."""

from . import callbacks, data, gradcheck, init, layers, losses, metrics, optim
from .callbacks import Callback
from .model import History, Model, TrainingDiverged
from .net import Net
from .rng import get_rng, seed
from .sweeps import sweep  # the function; the package is tinynn.sweeps

__version__ = "0.1.0"

__all__ = [
    "Callback",
    "History",
    "Model",
    "Net",
    "TrainingDiverged",
    "callbacks",
    "data",
    "get_rng",
    "gradcheck",
    "init",
    "layers",
    "losses",
    "metrics",
    "optim",
    "seed",
    "sweep",
]
