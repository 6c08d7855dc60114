"""The pre-norm transformer block (GPT-2, makemore): two residual blocks of ready-made layers.

::

    x = x + attn(ln_1(x))                      attn = MultiHeadAttention(dim, num_heads, causal)
    x = x + mlp(ln_2(x))                       mlp  = Dense(dim, r*dim) -> GELU -> Dense(r*dim, dim)

Nothing here has a backward of its own: ``Residual`` adds the gradient of the identity path, and
each layer inside brings its own. With ``dropout`` > 0 the attention weights are dropped (inside
``MultiHeadAttention``) and so is the output of each branch before it is added back (a
``Dropout`` last in each residual block), as in GPT-2.
"""

from __future__ import annotations

from typing import Any

from ..checks import check_int
from .activations import GELU
from .attention import MultiHeadAttention
from .base import from_config, register_layer
from .blocks import Residual, Sequential
from .dense import Dense
from .dropout import Dropout
from .normalization import LayerNorm


@register_layer
class TransformerBlock(Sequential):
    """``x + attn(ln(x))``, then ``x + mlp(ln(x))`` with a GELU MLP ``mlp_ratio`` times wider than ``dim``.

    Its two ``Residual`` blocks are its ``sublayers()``: parameters are named by path
    (``"0.Residual.1.MultiHeadAttention.in_proj_weight"``, ``"1.Residual.1.Dense.w"``), and a
    ``Net`` binds them into its flat vectors like any block's. Sequences are (N, T, dim).
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: int = 4, dropout: float = 0.0,
                 causal: bool = False) -> None:
        super().__init__([from_config(c) for c in _layers(dim, num_heads, mlp_ratio, dropout, causal)])
        self.dim, self.num_heads, self.mlp_ratio = int(dim), int(num_heads), int(mlp_ratio)
        self.dropout, self.causal = float(dropout), bool(causal)

    def get_config(self) -> dict[str, Any]:
        return {"dim": self.dim, "num_heads": self.num_heads, "mlp_ratio": self.mlp_ratio,
                "dropout": self.dropout, "causal": self.causal}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TransformerBlock:
        return cls(**config)

    @classmethod
    def param_shapes(cls, config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        """The shapes of its layers' parameters under their paths, from the arguments alone (nothing built)."""
        return Sequential.param_shapes({"layers": _layers(**config)})


def _layers(dim: int, num_heads: int, mlp_ratio: int = 4, dropout: float = 0.0,
            causal: bool = False) -> list[dict[str, Any]]:
    """The configs of the block's two residual blocks (checked arguments; nothing allocated)."""
    where = "TransformerBlock"
    dim, num_heads = check_int(dim, "dim", where=where), check_int(num_heads, "num_heads", where=where)
    hidden = check_int(mlp_ratio, "mlp_ratio", where=where) * dim
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"{where}: dropout must be a probability in [0, 1), got {dropout!r}")
    if not isinstance(causal, bool):
        raise ValueError(f"{where}: causal must be True or False, got {causal!r}")
    if dim % num_heads:
        raise ValueError(f"{where}: dim ({dim}) must be divisible by num_heads ({num_heads})")

    def config(cls: type, **args: Any) -> dict[str, Any]:  # as layer_config(cls(**args)) writes it
        return {"type": cls.__name__, "config": args}

    drop = [config(Dropout, p=float(dropout))] if dropout > 0 else []
    norm = config(LayerNorm, normalized_shape=[dim], eps=1e-5, elementwise_affine=True)
    attn = config(MultiHeadAttention, embed_dim=dim, num_heads=num_heads, causal=causal, bias=True,
                  dropout=float(dropout))
    mlp = [config(Dense, in_features=dim, out_features=hidden), config(GELU),
           config(Dense, in_features=hidden, out_features=dim)]
    return [config(Residual, layers=[norm, attn, *drop]), config(Residual, layers=[dict(norm), *mlp, *drop])]
