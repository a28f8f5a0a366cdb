"""The draws of ``row_keyed_normal`` in an ONNX graph: the row-keyed uniforms
in ONNX operators, and the inverse normal CDF that turns them into draws."""

import math

import numpy as np
import torch

from .._utils import MIX1, MIX2, golden_steps, seed_key

# Wichura's AS241 (as in CPython's statistics.NormalDist.inv_cdf): rational
# approximations of the inverse normal CDF, accurate to about 1e-16.
_AS241 = {
    "a": [
        3.3871328727963666080e0,
        1.3314166789178437745e2,
        1.9715909503065514427e3,
        1.3731693765509461125e4,
        4.5921953931549871457e4,
        6.7265770927008700853e4,
        3.3430575583588128105e4,
        2.5090809287301226727e3,
    ],
    "b": [
        1.0,
        4.2313330701600911252e1,
        6.8718700749205790830e2,
        5.3941960214247511077e3,
        2.1213794301586595867e4,
        3.9307895800092710610e4,
        2.8729085735721942674e4,
        5.2264952788528545610e3,
    ],
    "c": [
        1.42343711074968357734e0,
        4.63033784615654529590e0,
        5.76949722146069140550e0,
        3.64784832476320460504e0,
        1.27045825245236838258e0,
        2.41780725177450611770e-1,
        2.27238449892691845833e-2,
        7.74545014278341407640e-4,
    ],
    "d": [
        1.0,
        2.05319162663775882187e0,
        1.67638483018380384940e0,
        6.89767334985100004550e-1,
        1.48103976427480074590e-1,
        1.51986665636164571966e-2,
        5.47593808499534494600e-4,
        1.05075007164441684324e-9,
    ],
    "e": [
        6.65790464350110377720e0,
        5.46378491116411436990e0,
        1.78482653991729133580e0,
        2.96560571828504891230e-1,
        2.65321895265761230930e-2,
        1.24266094738807843860e-3,
        2.71155556874348757815e-5,
        2.01033439929228813265e-7,
    ],
    "f": [
        1.0,
        5.99832206555887937690e-1,
        1.36929880922735805310e-1,
        1.48753612908506148525e-2,
        7.86869131145613259100e-4,
        1.84631831751005468180e-5,
        1.42151175831644588870e-7,
        2.04426310338993978564e-15,
    ],
}


def _polynomial(coefficients, r):
    """``sum_k coefficients[k] r^k``, by Horner's rule."""
    value = torch.full_like(r, coefficients[-1])
    for c in reversed(coefficients[:-1]):
        value = value * r + c
    return value


def ndtri(p):
    """Inverse of the standard normal CDF of float64 ``p`` in (0, 1)."""
    q = p - 0.5
    central = q.abs() <= 0.425
    r = 0.180625 - q * q
    x_central = q * _polynomial(_AS241["a"], r) / _polynomial(_AS241["b"], r)
    tail = torch.where(q <= 0, p, 1.0 - p)
    tail = torch.where(central, torch.full_like(p, 0.5), tail)  # any safe value
    r = torch.sqrt(-torch.log(tail))
    near = r <= 5.0
    r_near, r_far = r - 1.6, r - 5.0
    x_near = _polynomial(_AS241["c"], r_near) / _polynomial(_AS241["d"], r_near)
    x_far = _polynomial(_AS241["e"], r_far) / _polynomial(_AS241["f"], r_far)
    x_tail = torch.where(near, x_near, x_far)
    x_tail = torch.where(q < 0, -x_tail, x_tail)
    return torch.where(central, x_central, x_tail)


# --------------------------------------------------------------------------
# The uniforms of row_keyed_normal, in ONNX operators
# --------------------------------------------------------------------------
class _Builder:
    """The nodes and initializers of an ONNX graph, named as they are added."""

    def __init__(self):
        self.nodes, self.inits = [], []
        self.count = 0

    def const(self, value, dtype):
        from onnx import numpy_helper

        name = f"c{len(self.inits)}"
        array = np.asarray(value, dtype=dtype)
        self.inits.append(numpy_helper.from_array(array, name))
        return name

    def op(self, op_type, *inputs, **attrs):
        from onnx import helper

        self.count += 1
        name = f"t{self.count}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [name], **attrs))
        return name

    def mix(self, z):
        """SplitMix64's finaliser of the uint64 tensor ``z``, as ``_mix64``."""
        op, const = self.op, self.const
        shift = {"direction": "RIGHT"}
        z = op("BitwiseXor", z, op("BitShift", z, const(30, np.uint64), **shift))
        z = op("Mul", z, const(MIX1, np.uint64))
        z = op("BitwiseXor", z, op("BitShift", z, const(27, np.uint64), **shift))
        z = op("Mul", z, const(MIX2, np.uint64))
        return op("BitwiseXor", z, op("BitShift", z, const(31, np.uint64), **shift))


def uniform_graph(n_features, n_uniforms, seed, opset):
    """ONNX model: float32 rows ``x`` to the uniforms of ``row_keyed_normal``.

    Returns a model with input ``x`` (float32, (n, n_features)) and output
    ``u`` (float64, (n, n_uniforms)): ``((h >> 11) + 0.5) 2^-53`` with the
    SplitMix64 hashes ``h`` of each row's key and the counters 1, 2, ...,
    where the key mixes the bits of the row's float32 values with their
    positions and ``seed``.
    """
    from onnx import TensorProto, helper

    g = _Builder()
    op, const = g.op, g.const
    bits = _float32_bits(g, "x")
    h = g.mix(op("Add", bits, const(golden_steps(n_features), np.uint64)))
    key = op("BitwiseXor", g.mix(_row_sum(g, h)), const(seed_key(seed), np.uint64))
    h = g.mix(op("Add", key, const(golden_steps(n_uniforms)[None, :], np.uint64)))
    top = op("BitShift", h, const(11, np.uint64), direction="RIGHT")
    u = op(
        "Mul",
        op("Add", op("Cast", top, to=TensorProto.DOUBLE), const(0.5, np.float64)),
        const(2.0**-53, np.float64),
    )
    g.nodes.append(helper.make_node("Identity", [u], ["u"]))
    graph = helper.make_graph(
        g.nodes,
        "row_keyed_uniforms",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, n_features])],
        [helper.make_tensor_value_info("u", TensorProto.DOUBLE, [None, n_uniforms])],
        g.inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _row_sum(g, h):
    """The sum of each row of the uint64 tensor ``h`` modulo 2^64, from exact
    float64 sums of its 32-bit halves."""
    from onnx import TensorProto

    op, const = g.op, g.const
    low = op("BitwiseAnd", h, const(0xFFFFFFFF, np.uint64))
    high = op("BitShift", h, const(32, np.uint64), direction="RIGHT")
    axes = const([1], np.int64)
    low = op("ReduceSum", op("Cast", low, to=TensorProto.DOUBLE), axes, keepdims=1)
    high = op("ReduceSum", op("Cast", high, to=TensorProto.DOUBLE), axes, keepdims=1)
    return op(
        "Add",
        op(
            "BitShift",
            op("Cast", high, to=TensorProto.UINT64),
            const(32, np.uint64),
            direction="LEFT",
        ),
        op("Cast", low, to=TensorProto.UINT64),
    )


def _float32_bits(g, x):
    """The bits of each float32 value of ``x`` as uint64, from its value."""
    from onnx import TensorProto

    op, const = g.op, g.const
    # The bits of each float32 value, from its value: an exact computation
    # in float64 (ONNX's BitCast needs opset 26).
    v = op("Cast", x, to=TensorProto.DOUBLE)
    a = op("Abs", v)
    zero = const(0.0, np.float64)
    negative = op(
        "Or",
        op("Less", v, zero),
        op("Less", op("Div", const(1.0, np.float64), v), zero),  # -0.0
    )
    smallest = const(2.0**-126, np.float64)
    subnormal = op("Less", a, smallest)
    safe = op("Where", subnormal, const(1.0, np.float64), a)
    # Exponent from the logarithm, then corrected against exact powers of 2.
    powers = const(2.0 ** np.arange(-127, 130, dtype=np.float64), np.float64)
    e = op("Floor", op("Div", op("Log", safe), const(math.log(2.0), np.float64)))
    e = op("Clip", e, const(-126.0, np.float64), const(127.0, np.float64))
    k = op("Cast", op("Add", e, const(127.0, np.float64)), to=TensorProto.INT64)
    one = const(1, np.int64)
    k = op("Sub", k, op("Cast", op("Less", safe, op("Gather", powers, k)), to=7))
    k_next = op("Add", k, one)
    k = op(
        "Add",
        k,
        op("Cast", op("GreaterOrEqual", safe, op("Gather", powers, k_next)), to=7),
    )
    # |v| = 2^(k - 127) (1 + f): biased exponent k, fraction f 2^23.
    fraction = op(
        "Mul",
        op("Sub", op("Div", safe, op("Gather", powers, k)), const(1.0, np.float64)),
        const(2.0**23, np.float64),
    )
    normal = op(
        "Add",
        op("Mul", op("Cast", k, to=TensorProto.DOUBLE), const(2.0**23, np.float64)),
        fraction,
    )
    magnitude = op(
        "Where", subnormal, op("Mul", a, const(2.0**149, np.float64)), normal
    )
    bits = op(
        "Add",
        magnitude,
        op("Where", negative, const(2.0**31, np.float64), zero),
    )
    return op("Cast", bits, to=TensorProto.UINT64)
