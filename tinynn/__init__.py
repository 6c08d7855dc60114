"""tinynn: a small, fast, readable deep-learning framework on numpy."""

from . import data, gradcheck, init, layers, losses, metrics, optim
from .model import History, Model, TrainingDiverged
from .net import Net
from .rng import get_rng, seed
from .sweep import sweep

__version__ = "0.1.0"

__all__ = [
    "History",
    "Model",
    "Net",
    "TrainingDiverged",
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
