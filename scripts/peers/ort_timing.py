"""The timed loop the ONNX Runtime harnesses share (ort_gemm.py,
ort_matmulnbits.py): a one-node session on THREADS intra-op threads, its
input "a" bound once so the loop measures the operator, not Python's copies;
prints "M K N THREADS OP GOPS_MEDIAN GOPS_BEST RUNS". With cold=True the
caches are evicted before every timed run, as `qgemm bench --cold` does."""
import glob
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnxruntime as ort


def cache_bytes(level):
    """Bytes of cpu0's level-`level` data or unified cache, from Linux sysfs
    (as qgemm reads them); 0 where sysfs does not say."""
    for d in glob.glob("/sys/devices/system/cpu/cpu0/cache/index*"):
        try:
            if int(open(os.path.join(d, "level")).read()) != level:
                continue
            if open(os.path.join(d, "type")).read().strip() == "Instruction":
                continue
            size = open(os.path.join(d, "size")).read().strip()
        except (OSError, ValueError):
            continue
        units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
        if size[-1:] in units and size[:-1].isdigit():
            return int(size[:-1]) * units[size[-1]]
        if size.isdigit():
            return int(size)
    return 0


def l3_count():
    """The distinct L3 caches of the online CPUs (sysfs shared_cpu_list), as
    qgemm bench counts them; 1 where sysfs does not say."""
    lists = set()
    for d in glob.glob("/sys/devices/system/cpu/cpu[0-9]*/cache/index*"):
        try:
            if int(open(os.path.join(d, "level")).read()) == 3:
                lists.add(open(os.path.join(d, "shared_cpu_list")).read().strip())
        except (OSError, ValueError):
            continue
    return max(len(lists), 1)


class CacheEvictor:
    """The rule of qgemm bench --cold: twice the caches THREADS threads may
    use (an L2 each, an L3 for each of as many L3s as threads; at least 64
    MiB), read on THREADS threads before every timed run and not timed. The
    reads run on Python's threads, not on ONNX Runtime's workers, so a
    worker's own L2 may keep a little of the weights."""

    def __init__(self, threads):
        t = max(threads, 1)
        caches = cache_bytes(2) * t + cache_bytes(3) * min(t, l3_count())
        self.buffer = np.full(max(2 * caches, 64 << 20) // 8, 0xA5A5A5A5A5A5A5A5, dtype=np.uint64)
        self.parts = np.array_split(self.buffer, max(threads, 1))
        self.pool = ThreadPoolExecutor(len(self.parts))

    def evict(self):
        # NumPy's reductions release the GIL, so the parts are read at once.
        list(self.pool.map(np.bitwise_xor.reduce, self.parts))

    def close(self):
        self.pool.shutdown()


def time_model(model_bytes, x, m, k, n, threads, min_seconds, op, cold=False):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
    binding = sess.io_binding()
    binding.bind_cpu_input("a", x)
    binding.bind_output("y")
    sess.run_with_iobinding(binding)
    evictor = CacheEvictor(threads) if cold else None
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
    print(f"{m} {k} {n} {threads} {op} {ops / times[len(times) // 2] / 1e9:.6f} {ops / times[0] / 1e9:.6f} {len(times)}",
          flush=True)
