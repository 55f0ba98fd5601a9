"""The timed loop the ONNX Runtime harnesses share (ort_gemm.py,
ort_matmulnbits.py): a one-node session on THREADS intra-op threads, its
input "a" bound once so the loop measures the operator, not Python's copies;
prints "M K N THREADS OP GOPS_MEDIAN GOPS_BEST RUNS"."""
import time

import onnxruntime as ort


def time_model(model_bytes, x, m, k, n, threads, min_seconds, op):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
    binding = sess.io_binding()
    binding.bind_cpu_input("a", x)
    binding.bind_output("y")
    sess.run_with_iobinding(binding)
    times = []
    start = time.perf_counter()
    while len(times) < 5 or (time.perf_counter() - start < min_seconds and len(times) < 100000):
        t0 = time.perf_counter()
        sess.run_with_iobinding(binding)
        times.append(time.perf_counter() - t0)
    times.sort()
    ops = 2.0 * m * n * k
    print(f"{m} {k} {n} {threads} {op} {ops / times[len(times) // 2] / 1e9:.6f} {ops / times[0] / 1e9:.6f} {len(times)}",
          flush=True)
