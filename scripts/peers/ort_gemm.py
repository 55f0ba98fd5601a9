"""Times ONNX Runtime's MatMulInteger (int32 output) and QLinearMatMul (uint8
output) for scripts/bench-peers: uint8 activations X[M×K], int8 weights
W[K×N] as an initializer (the layout ONNX expects; it is prepacked at session
creation, as qgemm packs once). Reads "M K N THREADS MIN_SECONDS [cold BYTES CHUNK]"
lines on stdin, prints "M K N THREADS OP GOPS_MEDIAN GOPS_BEST RUNS" for each
op; "cold BYTES CHUNK" evicts the caches before every timed run with a read of BYTES
bytes in chunks of CHUNK, each read twice (cold_lines.py, ort_timing.CacheEvictor).

First it checks each op's arithmetic on this CPU with full-range operands
(uint8 0…255, int8 −128…127, 64×256×128, activation zero point 128):
MatMulInteger must give the exact sums, QLinearMatMul (unit input scales,
output scale 3000, zero point 128) must be within one step of them rounded
and clamped. Without VNNI, MLAS adds pairs of products in int16 with
saturation, and then they are not. It prints "check OP ok" or
"check OP wrong WRONG CHECKED LARGEST_ERROR" first. Each timed case is
checked the same way on the last timed run's output, with the timed scales
(case_check.py): "check OP M K N THREADS ok" or "… wrong …"."""
import sys

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper

from case_check import exact_sums, print_case_check, print_check, requantized, sampled_rows
from cold_lines import cold_eviction
from ort_timing import time_model


def model(op, m, k, n, w, scales=(0.02, 0.01, 0.5)):
    b = helper.make_tensor("b", TensorProto.INT8, [k, n], w.tobytes(), raw=True)
    if op == "MatMulInteger":
        inits = [b, helper.make_tensor("a_zp", TensorProto.UINT8, [], [128]),
                 helper.make_tensor("b_zp", TensorProto.INT8, [], [0])]
        node = helper.make_node("MatMulInteger", ["a", "b", "a_zp", "b_zp"], ["y"])
        out = TensorProto.INT32
    else:
        a_scale, b_scale, y_scale = scales
        inits = [b, helper.make_tensor("a_scale", TensorProto.FLOAT, [], [a_scale]),
                 helper.make_tensor("a_zp", TensorProto.UINT8, [], [128]),
                 helper.make_tensor("b_scale", TensorProto.FLOAT, [], [b_scale]),
                 helper.make_tensor("b_zp", TensorProto.INT8, [], [0]),
                 helper.make_tensor("y_scale", TensorProto.FLOAT, [], [y_scale]),
                 helper.make_tensor("y_zp", TensorProto.UINT8, [], [128])]
        node = helper.make_node("QLinearMatMul", ["a", "a_scale", "a_zp", "b", "b_scale", "b_zp", "y_scale", "y_zp"], ["y"])
        out = TensorProto.UINT8
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("a", TensorProto.UINT8, [m, k])],
                              [helper.make_tensor_value_info("y", out, [m, n])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()


def check(op):
    m, k, n = 64, 256, 128
    rng = np.random.default_rng(7)
    x = rng.integers(0, 256, size=(m, k), dtype=np.uint8)
    w = rng.integers(-128, 128, size=(k, n), dtype=np.int8)
    exact = exact_sums(x, 128, w.T)
    try:
        sess = ort.InferenceSession(model(op, m, k, n, w, (1.0, 1.0, 3000.0)), providers=["CPUExecutionProvider"])
        y = sess.run(None, {"a": x})[0].astype(np.float64)
    except Exception as e:  # an op this ONNX Runtime cannot run fails where it is timed, with its own message
        print(f"ort_gemm: {op} not checked: {str(e).splitlines()[0]}", file=sys.stderr)
        return
    if op == "MatMulInteger":
        error = np.abs(y - exact)
    else:
        error = np.abs(y - requantized(exact, 1.0, None, 3000.0, 128, 0, 255))
        error[error <= 1] = 0  # rounding and float order may differ by one step
    print_check(op, error)


for op in ("MatMulInteger", "QLinearMatMul"):
    check(op)
rng = np.random.default_rng(1)
for line in sys.stdin:
    if not line.strip():
        continue
    fields = line.split()
    cold = cold_eviction(fields[5:], line, "ort_gemm")
    m, k, n, threads, min_seconds = int(fields[0]), int(fields[1]), int(fields[2]), int(fields[3]), float(fields[4])
    x = rng.integers(0, 256, size=(m, k), dtype=np.uint8)
    w = rng.integers(-128, 128, size=(k, n), dtype=np.int8)
    rows = sampled_rows(m)
    sums = exact_sums(x[rows], 128, w.T)
    for op in ("MatMulInteger", "QLinearMatMul"):
        y = time_model(model(op, m, k, n, w), x, m, k, n, threads, min_seconds, op, cold=cold)[rows].astype(np.float64)
        if op == "MatMulInteger":
            error = np.abs(y - sums)
        else:
            a_scale, b_scale, y_scale = 0.02, 0.01, 0.5  # model()'s defaults, the timed ones
            error = np.abs(y - requantized(sums, a_scale * b_scale, None, y_scale, 128, 0, 255))
            error[error <= 1] = 0  # rounding and float order may differ by one step
        print_case_check(op, m, k, n, threads, error)
