"""The timed loop the ONNX Runtime harnesses share (ort_gemm.py,
ort_matmulnbits.py): a one-node session on THREADS intra-op threads, its
input "a" bound once so the loop measures the operator, not Python's copies;
prints "M K N THREADS OP GOPS_MEDIAN GOPS_BEST RUNS" and returns the last timed
run's output. With cold=(B, C) the
caches are evicted before every timed run by a read of B bytes in chunks of C
bytes, each chunk twice, as `qgemm bench --cold` reads (cold_lines.py)."""
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnxruntime as ort
from cold_lines import chunks
from timing_stats import median_of_sorted


class CacheEvictor:
    """A buffer of BYTES bytes (as many as qgemm bench --cold reads), read on
    THREADS threads before every timed run and not timed, in chunks of CHUNK
    bytes, each chunk twice in a row (cold_lines.py says why). The calling thread,
    which runs ONNX Runtime's work on one thread and takes a share of it on
    more, reads the first part itself; Python's threads read the rest, not
    ONNX Runtime's workers, so on more than one thread a worker's own L2 may
    keep a little of the weights."""

    def __init__(self, threads, nbytes, chunk):
        self.buffer = np.full(nbytes // 8, 0xA5A5A5A5A5A5A5A5, dtype=np.uint64)
        self.chunks = [np.array_split(self.buffer[a:b], max(threads, 1))
                       for a, b in chunks(len(self.buffer), max(chunk // 8, 1))]
        self.pool = ThreadPoolExecutor(max(threads - 1, 1))

    def evict(self):
        for parts in self.chunks:
            for _ in range(2):
                # NumPy's reductions release the GIL, so the parts are read at once.
                pending = [self.pool.submit(np.bitwise_xor.reduce, part) for part in parts[1:]]
                np.bitwise_xor.reduce(parts[0])
                for f in pending:
                    f.result()

    def close(self):
        self.pool.shutdown()


def time_model(model_bytes, x, m, k, n, threads, min_seconds, op, cold=None):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
    binding = sess.io_binding()
    binding.bind_cpu_input("a", x)
    binding.bind_output("y")
    sess.run_with_iobinding(binding)
    evictor = CacheEvictor(threads, *cold) if cold else None
    times = []
    start = time.perf_counter()
    while len(times) < 5 or (time.perf_counter() - start < min_seconds and len(times) < 100000):
        if evictor:
            evictor.evict()
        t0 = time.perf_counter()
        sess.run_with_iobinding(binding)
        times.append(time.perf_counter() - t0)
    if evictor:
        evictor.close()
    times.sort()
    ops = 2.0 * m * n * k
    print(f"{m} {k} {n} {threads} {op} {ops / median_of_sorted(times) / 1e9:.6f} {ops / times[0] / 1e9:.6f} {len(times)}",
          flush=True)
    return binding.copy_outputs_to_cpu()[0]  # the last timed run's output, for the case's check
