"""Times ONNX Runtime's MatMulNBits (com.microsoft) for scripts/bench-peers
--weights int4: Float activations A[M×K], 4-bit weights in blocks of BLOCK
along K with one Float scale per block and no zero points (so q − 8, as
qgemm's int4), accuracy_level 4 (int8 activations inside, the W4A8 route),
weights as initializers (prepacked at session creation, as qgemm packs once).
Reads "M K N THREADS MIN_SECONDS BLOCK [cold BYTES CHUNK]" lines on stdin, prints
"M K N THREADS MatMulNBits GOPS_MEDIAN GOPS_BEST RUNS" for each; "cold BYTES CHUNK"
evicts the caches before every timed run with a read of BYTES bytes in chunks
of CHUNK, each read twice (cold_lines.py, ort_timing.CacheEvictor). Each case
is checked on the last timed run's output (below): "check MatMulNBits M K N
THREADS ok" or "… wrong WRONG CHECKED LARGEST_ERROR", the error in percent
of the output's RMS."""
import sys

import numpy as np
from onnx import TensorProto, helper

from case_check import print_case_check, sampled_rows
from cold_lines import cold_eviction
from ort_timing import time_model


def model(m, k, n, block, rng):
    """The one-node graph and its weights as Float (N×K), dequantized."""
    blocks = (k + block - 1) // block
    packed = rng.integers(0, 256, size=(n, blocks, block // 2), dtype=np.uint8)
    scales = (rng.random(n * blocks, dtype=np.float32) + 0.5) / 64
    inits = [helper.make_tensor("b", TensorProto.UINT8, [n, blocks, block // 2], packed.tobytes(), raw=True),
             helper.make_tensor("scales", TensorProto.FLOAT, [n * blocks], scales.tobytes(), raw=True)]
    node = helper.make_node("MatMulNBits", ["a", "b", "scales"], ["y"], domain="com.microsoft",
                            K=k, N=n, bits=4, block_size=block, accuracy_level=4)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("a", TensorProto.FLOAT, [m, k])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])], inits)
    # Element k of a block is the low nibble of byte k/2 for even k, the high
    # one for odd k; without zero points the zero is 8.
    nibbles = np.stack([packed & 15, packed >> 4], axis=-1).reshape(n, blocks * block)[:, :k].astype(np.float64)
    weights = (nibbles - 8) * np.repeat(scales.reshape(n, blocks).astype(np.float64), block, axis=1)[:, :k]
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                   helper.make_opsetid("com.microsoft", 1)]).SerializeToString(), weights


rng = np.random.default_rng(1)
for line in sys.stdin:
    if not line.strip():
        continue
    fields = line.split()
    m, k, n, threads, min_seconds, block = fields[:6]
    m, k, n, threads, min_seconds, block = int(m), int(k), int(n), int(threads), float(min_seconds), int(block)
    graph, weights = model(m, k, n, block, rng)
    x = rng.standard_normal((m, k), dtype=np.float32)
    y = time_model(graph, x, m, k, n, threads, min_seconds, "MatMulNBits",
                   cold=cold_eviction(fields[6:], line, "ort_matmulnbits"))
    # The check of the case: MatMulNBits quantizes A to int8 inside (per block,
    # accuracy_level 4), so its output is near, not at, the float product of
    # A and the dequantized weights; in percent of that product's RMS, a
    # value more than 10 % off counts as wrong (int8 rounding leaves well
    # under 5 %; weights read in another layout, about 140 %).
    rows = sampled_rows(m)
    reference = x[rows].astype(np.float64) @ weights.T
    error = np.abs(y[rows] - reference) / np.sqrt(np.mean(reference * reference)) * 100
    error[error <= 10] = 0
    print_case_check("MatMulNBits", m, k, n, threads, error)
