"""The textbook half of tinynn: every layer's and optimizer's math as plain numpy functions.

The layers in :mod:`tinynn.layers` and the optimizers in :mod:`tinynn.optim` are the *optimised
versions* of these functions: they reuse scratch arrays, pick memory layouts and fuse steps for speed, and
tests/test_textbook.py requires both to agree. Read these files to learn the math; read the fast
ones to learn what speed costs. ``Net(layers, fast=False)`` runs a whole net on this path.

The convention (every file here follows it):

- Pure functions of numpy arrays: no scratch arrays, no ``out=``, no globals, inputs never
  written. Free to allocate. Results have the float dtype of the inputs.
- Standard layouts: images (N, C, H, W), sequences (N, T, C), Dense weights (in, out) so ``x @ w``,
  conv weights (out_channels, in_channels, kh, kw), recurrent weights ``w_x`` (input, G*hidden) and
  ``w_h`` (hidden, G*hidden) with torch's gate order, biases 1-D.
- A forward returns ``(y, cache)``: its output and a tuple of whatever its backward needs, kept
  as the plain values of the formula (inputs, weights, intermediate results)::

      y, cache = conv2d(x, w, b, stride, padding)

  A forward that also updates buffers returns their new values after those two
  (``y, cache, running_mean, running_var = batch_norm(...)``), never changing the old arrays.
- Its backward is named ``<forward>_backward``, takes ``(dy, cache)`` and returns the gradient of
  the loss with respect to each array argument of the forward, in the forward's argument order::

      dx, dw, db = conv2d_backward(dy, cache)

  A forward of one array (an activation, a pool) gets the one gradient back, not a 1-tuple:
  ``dx = relu_backward(dy, cache)``. A bias that is None in the forward gets None as its gradient.
  A forward with several outputs (an LSTM step's ``(h, c)``) takes one gradient per output, then
  the cache: ``lstm_step_backward(dh, dc, cache)``.
- Hyperparameters (stride, padding, eps, momentum, ...) come after the arrays as keyword-friendly
  arguments, with the names and defaults of the layer they belong to.
- An optimizer's update is a pure function of ``(param, grad, state, t, hyperparameters)``
  returning ``(new_param, new_state)``; ``state`` is a dict of arrays (``{}`` before the first step).
- Docstrings carry the formula; the code reads like it.

Files, simple to complex: ``dense`` (affine map, ReLU, sigmoid), ``conv`` (conv2d naive and by
im2col, max/avg pooling), ``norm`` (batch norm), ``recurrent`` (RNN, LSTM, GRU steps and
backpropagation through time), ``optim`` (SGD ... AdamW).
"""
