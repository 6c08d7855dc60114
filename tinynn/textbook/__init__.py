"""The textbook half of tinynn: every layer's math as plain numpy functions, ``y, cache = f(x, ...)``."""
