"""RNN, LSTM and GRU: one step, its backward, and backpropagation through time over (N, T, C).

Parameters as torch's ``nn.RNN/LSTM/GRU`` with the Dense convention ``x @ w``: ``w_x`` (input, G*hidden),
``w_h`` (hidden, G*hidden), both biases ``b_x``, ``b_h`` (G*hidden,); G gate blocks side by side in
torch's order (LSTM ``i, f, g, o``; GRU ``r, z, n``). The initial hidden state is zero.

A step's forward returns its new hidden state (an LSTM's also its cell state) and a cache; its
backward takes the gradient of each new state (from the output at this step plus from the next
step) and returns the gradients of every argument. Through time, the parameter gradients are the
sums over the steps.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Array = np.ndarray


def sigmoid(a: Array) -> Array:
    """``1 / (1 + exp(-a))``."""
    with np.errstate(over="ignore"):  # exp(-a) = inf for very negative a: 0, the right limit
        return 1 / (1 + np.exp(-a))


# --- Elman RNN -----------------------------------------------------------------------------------


def rnn_step(x: Array, h_prev: Array, w_x: Array, w_h: Array, b_x: Array, b_h: Array,
             nonlinearity: str = "tanh") -> tuple[Array, tuple]:
    """``h = tanh(x @ w_x + b_x + h_prev @ w_h + b_h)`` (or ReLU)."""
    a = x @ w_x + b_x + h_prev @ w_h + b_h
    h = np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0)
    return h, (x, h_prev, h, w_x, w_h, nonlinearity)


def rnn_step_backward(dh: Array, cache: tuple) -> tuple[Array, ...]:
    """``da = dh * (1 - h^2)`` (ReLU: ``dh * [h > 0]``); then as Dense: ``dx = da @ w_x.T``,
    ``dh_prev = da @ w_h.T``, ``dw_x = x.T @ da``, ``dw_h = h_prev.T @ da``, ``db_x = db_h = sum da``."""
    x, h_prev, h, w_x, w_h, nonlinearity = cache
    da = dh * (1 - h**2) if nonlinearity == "tanh" else dh * (h > 0)
    return da @ w_x.T, da @ w_h.T, x.T @ da, h_prev.T @ da, da.sum(axis=0), da.sum(axis=0)


def rnn(x: Array, w_x: Array, w_h: Array, b_x: Array, b_h: Array, nonlinearity: str = "tanh") -> tuple[Array, list]:
    """Every step's hidden state ``hs`` (N, T, hidden) for a sequence x (N, T, input)."""
    h = np.zeros((x.shape[0], w_h.shape[0]), dtype=x.dtype)
    hs, caches = [], []
    for t in range(x.shape[1]):
        h, cache = rnn_step(x[:, t], h, w_x, w_h, b_x, b_h, nonlinearity)
        hs.append(h)
        caches.append(cache)
    return np.stack(hs, axis=1), caches


def bptt(step_backward: Callable[..., tuple[Array, ...]], dhs: Array, caches: list) -> tuple[Array, ...]:
    """Backpropagation through time of a cell whose state is one array h (RNN, GRU): ``dhs`` (N, T, hidden)
    is dL/dh_t from the output; walking back, step t also gets ``dh_prev`` of step t+1.
    ``step_backward(dh, cache)`` returns ``dx, dh_prev, *dparams``; the parameter gradients are summed
    over the steps. Returns dx, dw_x, dw_h, db_x, db_h."""
    dh_next = np.zeros_like(dhs[:, 0])
    dxs, dparams = [], [0, 0, 0, 0]
    for t in reversed(range(dhs.shape[1])):
        dx, dh_next, *dp = step_backward(dhs[:, t] + dh_next, caches[t])
        dxs.append(dx)
        dparams = [a + b for a, b in zip(dparams, dp, strict=True)]
    return np.stack(dxs[::-1], axis=1), *dparams


def rnn_backward(dhs: Array, caches: list) -> tuple[Array, ...]:
    """``bptt`` of ``rnn_step_backward``. Returns dx, dw_x, dw_h, db_x, db_h."""
    return bptt(rnn_step_backward, dhs, caches)


# --- LSTM ----------------------------------------------------------------------------------------


def lstm_step(x: Array, h_prev: Array, c_prev: Array, w_x: Array, w_h: Array, b_x: Array,
              b_h: Array) -> tuple[tuple[Array, Array], tuple]:
    """Long short-term memory (Hochreiter & Schmidhuber 1997, torch's form)::

        [ai, af, ag, ao] = x @ w_x + b_x + h_prev @ w_h + b_h
        i, f, o = sigmoid(ai, af, ao)      g = tanh(ag)
        c = f * c_prev + i * g             h = o * tanh(c)

    Returns ``(h, c), cache``.
    """
    a = x @ w_x + b_x + h_prev @ w_h + b_h
    ai, af, ag, ao = np.split(a, 4, axis=1)
    i, f, g, o = sigmoid(ai), sigmoid(af), np.tanh(ag), sigmoid(ao)
    c = f * c_prev + i * g
    h = o * np.tanh(c)
    return (h, c), (x, h_prev, c_prev, i, f, g, o, c, w_x, w_h)


def lstm_step_backward(dh: Array, dc: Array, cache: tuple) -> tuple[Array, ...]:
    """For ``dh``, ``dc`` = dL/dh, dL/dc of this step::

        do = dh * tanh(c)           dc += dh * o * (1 - tanh(c)^2)
        di = dc * g    df = dc * c_prev    dg = dc * i     dc_prev = dc * f
        da = [di i(1-i), df f(1-f), dg (1-g^2), do o(1-o)]   (through the squashing functions)

    then as Dense. Returns dx, dh_prev, dc_prev, dw_x, dw_h, db_x, db_h.
    """
    x, h_prev, c_prev, i, f, g, o, c, w_x, w_h = cache
    tc = np.tanh(c)
    do = dh * tc
    dc = dc + dh * o * (1 - tc**2)
    di, df, dg = dc * g, dc * c_prev, dc * i
    da = np.concatenate([di * i * (1 - i), df * f * (1 - f), dg * (1 - g**2), do * o * (1 - o)], axis=1)
    return da @ w_x.T, da @ w_h.T, dc * f, x.T @ da, h_prev.T @ da, da.sum(axis=0), da.sum(axis=0)


def lstm(x: Array, w_x: Array, w_h: Array, b_x: Array, b_h: Array) -> tuple[Array, list]:
    """Every step's hidden state ``hs`` (N, T, hidden) for a sequence x (N, T, input)."""
    h = c = np.zeros((x.shape[0], w_h.shape[0]), dtype=x.dtype)
    hs, caches = [], []
    for t in range(x.shape[1]):
        (h, c), cache = lstm_step(x[:, t], h, c, w_x, w_h, b_x, b_h)
        hs.append(h)
        caches.append(cache)
    return np.stack(hs, axis=1), caches


def lstm_backward(dhs: Array, caches: list) -> tuple[Array, ...]:
    """Backpropagation through time, as ``bptt`` with the cell's gradient carried along too
    (``dc_prev = dc * f``: no matrix product on that path). Returns dx, dw_x, dw_h, db_x, db_h."""
    dh_next = dc_next = np.zeros_like(dhs[:, 0])
    dxs, dparams = [], [0, 0, 0, 0]
    for t in reversed(range(dhs.shape[1])):
        dx, dh_next, dc_next, *dp = lstm_step_backward(dhs[:, t] + dh_next, dc_next, caches[t])
        dxs.append(dx)
        dparams = [a + b for a, b in zip(dparams, dp, strict=True)]
    return np.stack(dxs[::-1], axis=1), *dparams


# --- GRU -----------------------------------------------------------------------------------------


def gru_step(x: Array, h_prev: Array, w_x: Array, w_h: Array, b_x: Array, b_h: Array) -> tuple[Array, tuple]:
    """Gated recurrent unit (Cho et al. 2014), torch's form::

        [xr, xz, xn] = x @ w_x + b_x        [hr, hz, hn] = h_prev @ w_h + b_h
        r = sigmoid(xr + hr)    z = sigmoid(xz + hz)    n = tanh(xn + r * hn)
        h = (1 - z) * n + z * h_prev
    """
    xr, xz, xn = np.split(x @ w_x + b_x, 3, axis=1)
    hr, hz, hn = np.split(h_prev @ w_h + b_h, 3, axis=1)
    r, z = sigmoid(xr + hr), sigmoid(xz + hz)
    n = np.tanh(xn + r * hn)
    h = (1 - z) * n + z * h_prev
    return h, (x, h_prev, r, z, n, hn, w_x, w_h)


def gru_step_backward(dh: Array, cache: tuple) -> tuple[Array, ...]:
    """Gradients of the pre-activations, then as Dense::

        dn' = dh (1 - z)(1 - n^2)     dz' = dh (h_prev - n) z(1-z)     dr' = dn' hn r(1-r)
        dX = [dr', dz', dn']          dH = [dr', dz', dn' r]           dh_prev = dh z + dH @ w_h.T

    Returns dx, dh_prev, dw_x, dw_h, db_x, db_h.
    """
    x, h_prev, r, z, n, hn, w_x, w_h = cache
    dn = dh * (1 - z) * (1 - n**2)
    dz = dh * (h_prev - n) * z * (1 - z)
    dr = dn * hn * r * (1 - r)
    dX = np.concatenate([dr, dz, dn], axis=1)
    dH = np.concatenate([dr, dz, dn * r], axis=1)
    return dX @ w_x.T, dh * z + dH @ w_h.T, x.T @ dX, h_prev.T @ dH, dX.sum(axis=0), dH.sum(axis=0)


def gru(x: Array, w_x: Array, w_h: Array, b_x: Array, b_h: Array) -> tuple[Array, list]:
    """Every step's hidden state ``hs`` (N, T, hidden) for a sequence x (N, T, input)."""
    h = np.zeros((x.shape[0], w_h.shape[0]), dtype=x.dtype)
    hs, caches = [], []
    for t in range(x.shape[1]):
        h, cache = gru_step(x[:, t], h, w_x, w_h, b_x, b_h)
        hs.append(h)
        caches.append(cache)
    return np.stack(hs, axis=1), caches


def gru_backward(dhs: Array, caches: list) -> tuple[Array, ...]:
    """``bptt`` of ``gru_step_backward``. Returns dx, dw_x, dw_h, db_x, db_h."""
    return bptt(gru_step_backward, dhs, caches)
