"""Times ONNX Runtime's MatMulInteger (int32 output) and QLinearMatMul (uint8
output) for scripts/bench-peers: uint8 activations X[M×K], int8 weights
W[K×N] as an initializer (the layout ONNX expects; it is prepacked at session
creation, as qgemm packs once). Reads "M K N THREADS MIN_SECONDS" lines on
stdin, prints "M K N THREADS OP GOPS_MEDIAN GOPS_BEST RUNS" for each op."""
import sys

import numpy as np
from onnx import TensorProto, helper

from ort_timing import time_model


def model(op, m, k, n, w):
    b = helper.make_tensor("b", TensorProto.INT8, [k, n], w.tobytes(), raw=True)
    if op == "MatMulInteger":
        inits = [b, helper.make_tensor("a_zp", TensorProto.UINT8, [], [128]),
                 helper.make_tensor("b_zp", TensorProto.INT8, [], [0])]
        node = helper.make_node("MatMulInteger", ["a", "b", "a_zp", "b_zp"], ["y"])
        out = TensorProto.INT32
    else:
        inits = [b, helper.make_tensor("a_scale", TensorProto.FLOAT, [], [0.02]),
                 helper.make_tensor("a_zp", TensorProto.UINT8, [], [128]),
                 helper.make_tensor("b_scale", TensorProto.FLOAT, [], [0.01]),
                 helper.make_tensor("b_zp", TensorProto.INT8, [], [0]),
                 helper.make_tensor("y_scale", TensorProto.FLOAT, [], [0.5]),
                 helper.make_tensor("y_zp", TensorProto.UINT8, [], [128])]
        node = helper.make_node("QLinearMatMul", ["a", "a_scale", "a_zp", "b", "b_scale", "b_zp", "y_scale", "y_zp"], ["y"])
        out = TensorProto.UINT8
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("a", TensorProto.UINT8, [m, k])],
                              [helper.make_tensor_value_info("y", out, [m, n])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()


rng = np.random.default_rng(1)
for line in sys.stdin:
    if not line.strip():
        continue
    m, k, n, threads, min_seconds = line.split()
    m, k, n, threads, min_seconds = int(m), int(k), int(n), int(threads), float(min_seconds)
    x = rng.integers(0, 256, size=(m, k), dtype=np.uint8)
    w = rng.integers(-128, 128, size=(k, n), dtype=np.int8)
    for op in ("MatMulInteger", "QLinearMatMul"):
        time_model(model(op, m, k, n, w), x, m, k, n, threads, min_seconds, op)
