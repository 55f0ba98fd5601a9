"""Times PyTorch's int8 GEMM routes for scripts/bench-peers (run with the
python of a venv that has torch; the wrapper uses /work/venv-torch):

  fbgemm, onednn  torch.ops.quantized.linear on that quantized engine: quint8
                  activations X[M×K] (per-tensor scale and zero point), qint8
                  weights W[N×K] with per-output-channel scales, prepacked once
                  by linear_prepack, a float bias, quint8 output with a fixed
                  scale and zero point: the requantized route, like qgemm's.
  int_mm          torch._int_mm: int8 X[M×K] times int8 W[K×N] into int32, no
                  requantization (older versions want M > 16 and K, N
                  multiples of 8 on CPU; a case it refuses is skipped, with
                  the reason on stderr).

First it checks each route's arithmetic on this CPU with full-range operands
(uint8 0…255, int8 −128…127, 64×256×128, activation zero point 128; int8
activations for _int_mm): _int_mm must give the exact sums, quantized.linear
(unit input scales, output scale 3000, zero point 128) must be within one step
of them rounded and clamped. Without VNNI, FBGEMM and oneDNN add pairs of
products in int16 with saturation, and then they are not (PyTorch's own
quantization keeps activations to 7 bits on x86 for this reason). It prints
"check ROUTE ok" or "check ROUTE wrong WRONG CHECKED LARGEST_ERROR" first. Each timed case is
checked the same way on the last timed run's output, with the timed scales,
bias and zero points (case_check.py): "check ROUTE M K N THREADS ok" or
"… wrong …".

An engine missing from torch.backends.quantized.supported_engines is skipped.
Reads "M K N THREADS MIN_SECONDS [cold BYTES CHUNK]" lines on stdin, prints
"M K N THREADS ROUTE GOPS_MEDIAN GOPS_BEST RUNS" for each route; the thread
count goes to torch.set_num_threads. "cold BYTES CHUNK" evicts the caches
before every timed run with a read of BYTES bytes in chunks of CHUNK, each
read twice (cold_lines.py), reductions on torch's own intra-op threads, so
each worker's L2 is emptied too."""
import sys
import time
import warnings

import numpy as np
import torch

from case_check import exact_sums, print_case_check, print_check, requantized, sampled_rows
from cold_lines import chunks, cold_eviction
from timing_stats import median_of_sorted

# Quantized tensors are deprecated in recent torch (the warning says so on every
# run); these routes are still what quantized models run on.
warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")

X_SCALE, X_ZP = 0.02, 128
Y_SCALE, Y_ZP = 0.5, 128


def timed(call, min_seconds, evict=None):
    """The sorted run times and the last timed run's output."""
    call()  # warm-up: first-touch, lazily made primitives
    times = []
    start = time.perf_counter()
    while len(times) < 5 or (time.perf_counter() - start < min_seconds and len(times) < 100000):
        if evict:
            evict()
        t0 = time.perf_counter()
        out = call()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times, out


def report(m, k, n, threads, route, times):
    ops = 2.0 * m * n * k
    print(f"{m} {k} {n} {threads} {route} {ops / median_of_sorted(times) / 1e9:.6f} {ops / times[0] / 1e9:.6f} "
          f"{len(times)}", flush=True)


def check(engines):
    m, k, n = 64, 256, 128
    gen = torch.Generator().manual_seed(7)
    xu8 = torch.randint(0, 256, (m, k), dtype=torch.uint8, generator=gen)
    w8 = torch.randint(-128, 128, (n, k), dtype=torch.int8, generator=gen)
    exact = exact_sums(xu8.numpy(), 128, w8.numpy())
    with torch.inference_mode():
        xq = torch.quantize_per_tensor(xu8.float() - 128, 1.0, 128, torch.quint8)
        wq = torch.quantize_per_channel(w8.float(), torch.ones(n, dtype=torch.float64),
                                        torch.zeros(n, dtype=torch.int64), 0, torch.qint8)
        for engine in engines:
            torch.backends.quantized.engine = engine
            try:
                y = torch.ops.quantized.linear(xq, torch.ops.quantized.linear_prepack(wq, None), 3000.0, 128)
            except RuntimeError as e:  # timed below, where the same refusal skips the engine
                print(f"torch_gemm: {engine} not checked: {str(e).splitlines()[0]}", file=sys.stderr)
                continue
            error = np.abs(y.int_repr().numpy().astype(np.float64) - requantized(exact, 1.0, None, 3000.0, 128, 0, 255))
            error[error <= 1] = 0  # rounding and float order may differ by one step
            print_check(engine, error)
        a = (xu8.to(torch.int16) - 128).to(torch.int8)
        try:
            y = torch._int_mm(a, w8.t().contiguous())
        except RuntimeError as e:
            print(f"torch_gemm: _int_mm not checked: {str(e).splitlines()[0]}", file=sys.stderr)
        else:
            print_check("int_mm", np.abs(y.numpy().astype(np.float64) - exact))


def main():
    engines = [e for e in ("fbgemm", "onednn") if e in torch.backends.quantized.supported_engines]
    for e in ("fbgemm", "onednn"):
        if e not in engines:
            print(f"torch_gemm: quantized engine {e} not supported by this torch, skipped", file=sys.stderr)
    check(engines)
    gen = torch.Generator().manual_seed(1)
    for line in sys.stdin:
        if not line.strip():
            continue
        fields = line.split()
        cold = cold_eviction(fields[5:], line, "torch_gemm")
        m, k, n, threads, min_seconds = int(fields[0]), int(fields[1]), int(fields[2]), int(fields[3]), float(fields[4])
        torch.set_num_threads(threads)
        evict = None
        if cold:
            buffer = torch.full((cold[0] // 8,), 0x5A5A5A5A, dtype=torch.int64)
            parts = [buffer[a:b] for a, b in chunks(len(buffer), max(cold[1] // 8, 1))]

            def evict():
                for part in parts:
                    part.sum()
                    part.sum()
        xu8 = torch.randint(0, 256, (m, k), dtype=torch.uint8, generator=gen)
        w8 = torch.randint(-128, 128, (n, k), dtype=torch.int8, generator=gen)
        w_scales = 0.004 + 0.001 * (torch.arange(n, dtype=torch.float64) % 7)
        bias = torch.randn(n, generator=gen)
        rows = sampled_rows(m)
        sums = exact_sums(xu8[rows].numpy(), 128, w8.numpy())
        with torch.inference_mode():
            xq = torch.quantize_per_tensor((xu8.float() - X_ZP) * X_SCALE, X_SCALE, X_ZP, torch.quint8)
            wq = torch.quantize_per_channel((w8.double() * w_scales[:, None]).float(), w_scales,
                                            torch.zeros(n, dtype=torch.int64), 0, torch.qint8)
            for engine in engines:
                torch.backends.quantized.engine = engine
                try:
                    packed = torch.ops.quantized.linear_prepack(wq, bias)
                    times, y = timed(lambda: torch.ops.quantized.linear(xq, packed, Y_SCALE, Y_ZP), min_seconds,
                                     evict)
                except RuntimeError as e:
                    print(f"torch_gemm: {engine} skipped at {m}x{k}x{n}: {str(e).splitlines()[0]}", file=sys.stderr)
                    continue
                report(m, k, n, threads, engine, times)
                expected = requantized(sums, X_SCALE * w_scales.numpy(), bias.double().numpy(), Y_SCALE, Y_ZP, 0, 255)
                error = np.abs(y.int_repr()[rows].numpy().astype(np.float64) - expected)
                error[error <= 1] = 0  # rounding and float order may differ by one step
                print_case_check(engine, m, k, n, threads, error)
            a = (xu8.to(torch.int16) - 128).to(torch.int8)
            b = w8.t().contiguous()  # K×N, the layout _int_mm takes
            try:
                times, y = timed(lambda: torch._int_mm(a, b), min_seconds, evict)
            except RuntimeError as e:
                print(f"torch_gemm: _int_mm skipped at {m}x{k}x{n}: {str(e).splitlines()[0]}", file=sys.stderr)
            else:
                report(m, k, n, threads, "int_mm", times)
                print_case_check("int_mm", m, k, n, threads, np.abs(y[rows].numpy().astype(np.float64) - sums))


main()
