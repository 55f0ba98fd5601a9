"""scripts/bench-peers --weights int4: qgemm's 4-bit weights (Int4Weights,
Float in and out, rows quantized inside the call) against qgemm's own int8
path (Float output) and ONNX Runtime's MatMulNBits (4 bits, the same block
size, accuracy_level 4), in interleaved rounds; each library's fastest run
and median per shape, and the ratios from the fastest runs. MatMulNBits is
checked at every timed case against the float product of its activations and
dequantized weights (it quantizes the activations to int8 inside, so it is
near, not at, that product; ort_matmulnbits.py): a case more than 10 % of the
output's RMS off is marked ✗ and left out of the ratio. The int4 rows
also give the GB/s of weights and scales the fastest call read, against the
fastest plain read of the same bytes that qgemm bench times between its
calls. --cold evicts the caches before every timed run of every library
(qgemm bench --cold, and ort_timing.CacheEvictor reading as many bytes as
qgemm reports in its JSON's machine.evict_bytes, in chunks of
machine.evict_chunk_bytes, each chunk twice): a decode step reads each
layer's weights once, so it finds them in memory, not in the caches."""
import argparse
import json
import subprocess
import sys

import neighbours
from case_check import read_check
from json_output import tables_to_stderr_if, write_json

DECODE = ["1x4096x4096", "1x11008x4096", "4x4096x4096", "8x4096x4096", "32x4096x4096", "128x4096x4096"]

p = argparse.ArgumentParser(prog="scripts/bench-peers --weights int4")
p.add_argument("--qgemm", required=True)
p.add_argument("--weights", default="int4", choices=["int4"])  # how the wrapper chose this comparison
p.add_argument("--group-size", type=int, default=32)
p.add_argument("--threads", default="1")
p.add_argument("--shape", action="append", default=[])
p.add_argument("--kernel")
p.add_argument("--min-time", type=float, default=0.3)
p.add_argument("--rounds", type=int, default=3)
p.add_argument("--json", help="write the table as JSON to FILE ('-' for stdout, the text table then going to stderr)")
p.add_argument("--cold", action="store_true")
neighbours.add_options(p)
a = p.parse_args()
tables_to_stderr_if(a.json)
if a.rounds < 1:
    p.error("--rounds must be at least 1")
shapes = a.shape or DECODE
threads = [int(t) for t in a.threads.split(",")]
best, median = {}, {}
stream = {}  # (m, k, n, t) -> (fastest weight GB/s, fastest plain-read GB/s)
# With --neighbour, the same figures beside it (into=near below).
near = {"best": {}, "median": {}, "stream": {}}
alone = {"best": best, "median": median, "stream": stream}
# MatMulNBits is checked at every timed case on its last timed run's output
# (ort_matmulnbits.py): (m, k, n, threads) → (values off, values checked,
# largest error in percent of the output's RMS).
wrong_at, checked_at = {}, set()


def keep(lib, m, k, n, t, med, fast, into=alone):
    key = (lib, m, k, n, t)
    into["best"][key] = max(into["best"].get(key, 0.0), fast)
    into["median"][key] = max(into["median"].get(key, 0.0), med)


def qgemm(extra, lib, into):
    cmd = [a.qgemm, "bench", "--no-sgemm", "--threads", a.threads, "--min-time", str(a.min_time), "--json", "-"] + extra
    if a.cold:
        cmd.append("--cold")
    for s in shapes:
        cmd += ["--shape", s]
    if a.kernel:
        cmd += ["--kernel", a.kernel]
    # Its messages go to the terminal: a refused option says why.
    doc = json.loads(subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout)
    for r in doc["results"]:
        keep(lib, r["m"], r["k"], r["n"], r["threads"], r["int8_gops"], r["int8_gops_best"], into)
        if "stream_read_gbps_best" in r:
            key = (r["m"], r["k"], r["n"], r["threads"])
            w, rd = into["stream"].get(key, (0.0, 0.0))
            into["stream"][key] = (max(w, r["weight_gbps_best"]), max(rd, r["stream_read_gbps_best"]))
    return doc


def time_every_library(into, tag):
    print(f"bench-peers: {tag}", file=sys.stderr)
    qgemm(["--weights", "int4", "--group-size", str(a.group_size)], "qgemm int4", into)
    machine = qgemm(["--output-type", "float"], "qgemm int8", into)["machine"]
    # As many bytes as qgemm read, in the same chunks.
    cold = f" cold {machine['evict_bytes']} {machine['evict_chunk_bytes']}" if a.cold else ""
    lines = "".join(f"{s.replace('x', ' ')} {t} {a.min_time} {a.group_size}{cold}\n" for s in shapes for t in threads)
    out = subprocess.run([sys.executable, "scripts/peers/ort_matmulnbits.py"], input=lines, check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    for line in out.split("\n"):
        fields = line.split()
        if fields[:1] == ["check"]:  # "check MatMulNBits M K N THREADS ok|wrong WRONG CHECKED LARGEST"
            _, case, verdict = read_check(fields)
            checked_at.add(case)
            if verdict:
                wrong_at[case] = verdict
        elif fields:
            m, k, n, t, _, med, fast, _ = fields
            keep("ORT MatMulNBits", int(m), int(k), int(n), int(t), float(med), float(fast), into)


neighbour = neighbours.set_up(a, p, a.threads)
for rnd in range(a.rounds):
    tag = f"round {rnd + 1} of {a.rounds}"
    neighbours.round_(neighbour, rnd, lambda: time_every_library(alone, tag + (", alone" if neighbour else "")),
                      lambda: time_every_library(near, f"{tag}, beside the {a.neighbour} neighbour"))

libs = ["qgemm int4", "qgemm int8", "ORT MatMulNBits"]
caches = "cold: evicted before every timed run" if a.cold else "warm: runs follow each other"
print(f"GOP/s, fastest run of {a.rounds} interleaved rounds (medians in the JSON); group/block size {a.group_size}; caches {caches}")
print("| shape | threads | " + " | ".join(libs) + " | int4 / int8 | int4 / MatMulNBits | int4 weights GB/s / plain read GB/s |")
print("| --- | --- |" + " --- |" * (len(libs) + 3))
rows = []
for s in shapes:
    m, k, n = (int(v) for v in s.split("x"))
    for t in threads:
        b = [best.get((lib, m, k, n, t), 0.0) for lib in libs]
        ort_wrong = (m, k, n, t) in wrong_at
        r8 = f"{b[0] / b[1]:.2f}×" if b[0] and b[1] else "-"
        rort = f"{b[0] / b[2]:.2f}×" if b[0] and b[2] and not ort_wrong else "-"
        marks = ["", "", "✗" if ort_wrong else "" if (m, k, n, t) in checked_at else "?"]
        w, rd = stream.get((m, k, n, t), (0.0, 0.0))
        st = f"{w:.1f} / {rd:.1f} = {w / rd:.2f}" if rd else "-"
        print(f"| {m}×{k}×{n} | {t} | " + " | ".join(f"{v:.0f}{mark}" if v else "-" for v, mark in zip(b, marks))
              + f" | {r8} | {rort} | {st} |")
        rows.append({"m": m, "k": k, "n": n, "threads": t, "weight_gbps_best": w or None, "stream_read_gbps_best": rd or None,
                     "matmulnbits_checked": (m, k, n, t) in checked_at,
                     "matmulnbits_wrong": (dict(zip(("wrong", "checked", "largest_error_percent_of_rms"),
                                                    wrong_at[(m, k, n, t)])) if (m, k, n, t) in wrong_at else None),
                     "best": {lib: best.get((lib, m, k, n, t)) for lib in libs},
                     "median": {lib: median.get((lib, m, k, n, t)) for lib in libs}})
if wrong_at:
    print("MatMulNBits off at: " + "; ".join(
        f"{m}x{k}x{n} on {t} thread(s), {w:,} of {c:,} values more than 10 % of the output's RMS from the float "
        f"product (largest {e} %)" for (m, k, n, t), (w, c, e) in sorted(wrong_at.items()))
          + ". Marked ✗ and left out of the ratio.")
if any(best.get(("ORT MatMulNBits",) + row_key) and row_key not in checked_at
       for row_key in [(r["m"], r["k"], r["n"], r["threads"]) for r in rows]):
    print("MatMulNBits marked ? was timed but not checked there; counted in the ratio.")
if neighbour:
    print()
    print(f"beside a neighbour: {neighbours.description(neighbour)}; fastest run beside it, GOP/s, and the share "
          f"each library kept of its fastest run alone")
    print("| shape | threads | " + " | ".join(libs) + " | int4 / MatMulNBits beside it |")
    print("| --- | --- |" + " --- |" * (len(libs) + 1))
    for row in rows:
        m, k, n, t = row["m"], row["k"], row["n"], row["threads"]
        there = {lib: near["best"].get((lib, m, k, n, t)) for lib in libs}
        kept = {lib: there[lib] / row["best"][lib] if there[lib] and row["best"][lib] else None for lib in libs}
        row["neighbour"] = {"best": there, "kept": kept}
        cells = [f"{there[lib]:.0f} ({kept[lib]:.2f})" if kept[lib] else "-" for lib in libs]
        against = (f"{there['qgemm int4'] / there['ORT MatMulNBits']:.2f}×"
                   if there["qgemm int4"] and there["ORT MatMulNBits"] and (m, k, n, t) not in wrong_at else "-")
        print(f"| {m}×{k}×{n} | {t} | " + " | ".join(cells) + f" | {against} |")
if a.json:
    write_json(a.json, {"group_size": a.group_size, "rounds": a.rounds, "caches": "cold" if a.cold else "warm",
                        **({"neighbour": neighbours.for_json(neighbour)} if neighbour else {}), "rows": rows})
