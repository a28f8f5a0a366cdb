"""``lgamma`` in ONNX operators, for the exporter's missing translation.

ONNX has no log-gamma operator, which the log-probabilities of Poisson and
negative-binomial counts need (``torch.lgamma``). ``torch.onnx.export``
writes ``aten.lgamma`` with ``lgamma`` below (its ``custom_translation_table``
entry, ``TRANSLATIONS``), so that the graphs run the likelihoods' own code.

For x > 0: the recurrence ``lgamma(x) = lgamma(x + 8) - log(x (x + 1) ...
(x + 7))`` moves the argument to y = x + 8 >= 8, where the Stirling series
``(y - 1/2) log y - y + log(2 pi) / 2 + 1/(12 y) - 1/(360 y^3) + 1/(1260 y^5)
- 1/(1680 y^7)`` is accurate to its next term, 1/(1188 y^9) < 1e-11. It is
evaluated in float64 whatever the input's dtype (the shift's logs are summed,
not multiplied, so no product overflows) and cast back: about 1e-15 relative
over the range counts take, and to the dtype's rounding in float32. Counts
and the negative binomial's dispersions are positive; x <= 0 is not covered.
"""

import math

# The shift: y = x + SHIFT >= SHIFT, where the series below has converged.
SHIFT = 8
# Coefficients of 1/y, 1/y^3, 1/y^5, 1/y^7 in Stirling's series: B_2k / (2k
# (2k - 1)).
_STIRLING = (1 / 12, -1 / 360, 1 / 1260, -1 / 1680)
_DOUBLE = 11  # onnx.TensorProto.DOUBLE


def lgamma(x):
    """``log |Gamma(x)|`` of positive ``x``, built from ONNX operators (an
    onnxscript function traced by the exporter)."""
    from onnx import helper
    from onnxscript import opset18 as op

    def constant(value):
        tensor = helper.make_tensor("value", _DOUBLE, [], [float(value)])
        return op.Constant(value=tensor)

    z = op.Cast(x, to=_DOUBLE)
    shift = op.Log(z)
    for k in range(1, SHIFT):
        shift = op.Add(shift, op.Log(op.Add(z, constant(k))))
    y = op.Add(z, constant(SHIFT))
    log_y = op.Log(y)
    series = op.Sub(op.Mul(op.Sub(y, constant(0.5)), log_y), y)
    series = op.Add(series, constant(0.5 * math.log(2 * math.pi)))
    inverse = op.Reciprocal(y)
    inverse_square = op.Mul(inverse, inverse)
    # Horner's scheme in 1/y^2, times 1/y.
    tail = constant(_STIRLING[-1])
    for coefficient in reversed(_STIRLING[:-1]):
        tail = op.Add(op.Mul(tail, inverse_square), constant(coefficient))
    series = op.Add(series, op.Mul(tail, inverse))
    return op.CastLike(op.Sub(series, shift), x)


def translations():
    """The exporter's ``custom_translation_table``: ``aten.lgamma``."""
    import torch

    return {torch.ops.aten.lgamma.default: lgamma}
