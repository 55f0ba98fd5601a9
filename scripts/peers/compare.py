"""The comparison behind scripts/bench-peers: qgemm against oneDNN (matmul
primitive and dnnl_gemm_u8s8s32), ONNX Runtime and PyTorch on the same shapes
and thread counts, in one run: qgemm's int8 output against every peer, and its
int32 output against the int32 routes. See the wrapper's header for the
options."""
import argparse
import json
import os
import subprocess
import sys

import neighbours
from case_check import read_check
from json_output import tables_to_stderr_if, write_json

DEFAULT_SHAPES = ["1x4096x4096", "8x4096x4096", "32x4096x4096", "128x4096x4096", "256x256x256", "1024x1024x1024",
                  "2048x2048x2048", "384x768x3072", "64x1152x128", "3136x64x64", "12544x147x64", "3136x64x256",
                  "196x2304x256", "1x11008x4096"]
DEFAULT_TORCH_PYTHON = "/work/venv-torch/bin/python"

# Every peer: (name in the text, short column header, JSON key stem). The
# order is the tables' column order.
PEERS = [("oneDNN matmul s8", "dnnl-mm-s8", "onednn_matmul_s8"),
         ("oneDNN matmul s32", "dnnl-mm-s32", "onednn_matmul_s32"),
         ("oneDNN gemm_u8s8s32", "dnnl-gemm", "onednn"),  # "onednn_gops", as before the matmul came
         ("ORT MatMulInteger", "ORT-MMI", "ort_matmulinteger"),
         ("ORT QLinearMatMul", "ORT-QLMM", "ort_qlinearmatmul"),
         ("PyTorch fbgemm", "pt-fbgemm", "torch_fbgemm"),
         ("PyTorch onednn", "pt-onednn", "torch_onednn"),
         ("torch._int_mm", "int_mm", "torch_int_mm")]
SHORT = {name: short for name, short, _ in PEERS}
# Each peer's output type: the requantizing routes write bytes, the others int32.
OUTPUT = {"oneDNN matmul s8": "int8", "ORT QLinearMatMul": "uint8", "PyTorch fbgemm": "uint8",
          "PyTorch onednn": "uint8"}
INT32_PEERS = [name for name, _, _ in PEERS if name not in OUTPUT]

p = argparse.ArgumentParser(prog="scripts/bench-peers")
p.add_argument("--threads", default="1,2", help="thread counts, comma-separated (default 1,2)")
p.add_argument("--suite", action="append", default=[], help="a qgemm bench suite (square, llm, bert, cnn); repeatable")
p.add_argument("--shape", action="append", default=[], help="a shape MxKxN; repeatable")
p.add_argument("--kernel", help="qgemm kernel path (default: the best this CPU has)")
p.add_argument("--min-time", default="0.3", help="minimum timed seconds per shape, thread count and library")
p.add_argument("--rounds", type=int, default=1,
               help="run every library this many times, one after another, and keep each one's best median "
                    "and fastest run per shape (on a machine whose neighbours come and go; default 1)")
p.add_argument("--cold", action="store_true",
               help="evict the caches before every timed run of every library, as a decode step finds them")
p.add_argument("--json", help="write the table as JSON to FILE ('-' for stdout, the text tables then going to stderr)")
p.add_argument("--png", help="draw qgemm / best peer per shape into FILE")
p.add_argument("--torch-python", default=DEFAULT_TORCH_PYTHON if os.path.exists(DEFAULT_TORCH_PYTHON) else None,
               help=f"a python that can import torch, for the PyTorch routes (default {DEFAULT_TORCH_PYTHON} "
                    "if it exists; '' to leave PyTorch out)")
neighbours.add_options(p)
p.add_argument("--qgemm", required=True, help=argparse.SUPPRESS)
p.add_argument("--dnnl", required=True, help=argparse.SUPPRESS)
p.add_argument("--dnnl-matmul", help=argparse.SUPPRESS)
args = p.parse_args()
tables_to_stderr_if(args.json)

shapes = [] if (args.suite or args.shape) else DEFAULT_SHAPES
cmd = [args.qgemm, "bench", "--threads", args.threads, "--no-sgemm", "--min-time", args.min_time, "--json", "-"]
for s in args.suite:
    cmd += ["--suite", s]
for s in args.shape + shapes:
    cmd += ["--shape", s]
if args.kernel:
    cmd += ["--kernel", args.kernel]
if args.cold:
    cmd.append("--cold")
if args.rounds < 1:
    p.error("--rounds must be at least 1")
here = os.path.dirname(os.path.abspath(__file__))

torch_python = args.torch_python or None
if torch_python is None:
    print("bench-peers: no python with torch (--torch-python), PyTorch left out", file=sys.stderr)
elif subprocess.run([torch_python, "-c", "import torch"], stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL).returncode != 0:
    print(f"bench-peers: {torch_python} cannot import torch, PyTorch left out", file=sys.stderr)
    torch_python = None
if not args.dnnl_matmul:
    print("bench-peers: no --dnnl-matmul harness, the oneDNN matmul primitive left out", file=sys.stderr)

class Timings:
    """Each library's figures over the rounds, for one condition (alone, or
    beside the neighbour)."""

    def __init__(self):
        self.doc = self.doc32 = None  # qgemm bench's JSON, int8 and int32 output, merged over the rounds
        self.median, self.fastest = {}, {}  # (m, k, n, threads, peer name) → best median and fastest run, GOP/s
        self.impl = {}  # (m, k, n, threads, "s8" or "s32") → the oneDNN matmul implementation

    def keep(self, key, med, best):
        self.median[key] = max(self.median.get(key, 0.0), float(med))
        self.fastest[key] = max(self.fastest.get(key, 0.0), float(best))


# Each harness first checks its routes' arithmetic on this CPU with full-range
# operands ("check ROUTE ok" or "check ROUTE wrong WRONG CHECKED LARGEST"); a
# peer found wrong in any round is marked and left out of the ratio. It then
# checks every timed case on the last timed run's output ("check ROUTE M K N
# THREADS ok|wrong …"), since a library picks its kernel by shape and thread
# count: a peer wrong at a case is marked and left out of that case's ratio.
CHECKED = {"s8": "oneDNN matmul s8", "s32": "oneDNN matmul s32", "gemm": "oneDNN gemm_u8s8s32",
           "MatMulInteger": "ORT MatMulInteger", "QLinearMatMul": "ORT QLinearMatMul",
           "fbgemm": "PyTorch fbgemm", "onednn": "PyTorch onednn", "int_mm": "torch._int_mm"}
wrong = {}  # peer name → (values wrong, values checked, largest error)
checked = set()  # peers whose check ran (right or wrong): the others are marked "?"
wrong_at = {}  # (m, k, n, threads, peer name) → (values wrong, values checked, largest error)
checked_at = set()  # (m, k, n, threads, peer name) of the timed cases checked


def is_wrong(case, name):
    """Wrong on the full-range check or at this timed case."""
    return name in wrong or case + (name,) in wrong_at


def is_checked(case, name):
    """Both checks ran: the full-range one and this case's."""
    return name in checked and case + (name,) in checked_at


def run(argv, feed):
    """The harness's timing lines; its "check" lines go into `wrong`."""
    lines = []
    for line in subprocess.run(argv, input=feed, check=True, stdout=subprocess.PIPE, text=True).stdout.splitlines():
        fields = line.split()
        if fields[:1] != ["check"]:
            lines.append(line)
            continue
        route, case, verdict = read_check(fields)
        name = CHECKED[route]
        if case:
            checked_at.add(case + (name,))
            if verdict:
                wrong_at[case + (name,)] = verdict
            continue
        checked.add(name)
        if verdict:
            wrong[name] = verdict
    return lines


def merged(kept, this):
    """`this` run of qgemm bench kept with the earlier ones: the same cases in
    the same order, each with its best median and its fastest run."""
    if kept is None:
        return this
    for old, new in zip(kept["results"], this["results"]):
        best = max(old["int8_gops_best"], new["int8_gops_best"])
        if new["int8_gops"] > old["int8_gops"]:
            old.update(new)
        old["int8_gops_best"] = best
    return kept


def time_every_library(into, tag, int32=True):
    """One round: qgemm (int8 output, and int32 unless told not to), then
    every peer, on every case."""
    print(f"bench-peers: qgemm (int8 requantized output){tag} …", file=sys.stderr)
    into.doc = merged(into.doc, json.loads(subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout))
    if int32:
        # int32 output too, beside the int32 routes: like for like.
        print(f"bench-peers: qgemm (int32 output){tag} …", file=sys.stderr)
        into.doc32 = merged(into.doc32, json.loads(subprocess.run(cmd + ["--output-type", "int32"], check=True,
                                                                  stdout=subprocess.PIPE, text=True).stdout))
    cases = [(r["m"], r["k"], r["n"], r["threads"]) for r in into.doc["results"]]
    # Every peer reads as many bytes before each run as qgemm did, in the same chunks.
    cold = (f" cold {into.doc['machine']['evict_bytes']} {into.doc['machine']['evict_chunk_bytes']}"
            if args.cold else "")
    feed = "".join(f"{m} {k} {n} {t} {args.min_time}{cold}\n" for m, k, n, t in cases)

    if args.dnnl_matmul:
        print(f"bench-peers: oneDNN matmul primitive (s8 requantized and s32 output){tag} …", file=sys.stderr)
        for line in run([args.dnnl_matmul], feed):
            m, k, n, t, out, name, med, best, runs = line.split()
            case = (int(m), int(k), int(n), int(t))
            into.keep(case + (f"oneDNN matmul {out}",), med, best)
            into.impl[case + (out,)] = name
    print(f"bench-peers: oneDNN dnnl_gemm_u8s8s32 (int32 output){tag} …", file=sys.stderr)
    for line in run([args.dnnl], feed):
        m, k, n, t, med, best, runs = line.split()
        into.keep((int(m), int(k), int(n), int(t), "oneDNN gemm_u8s8s32"), med, best)
    print(f"bench-peers: ONNX Runtime MatMulInteger (int32) and QLinearMatMul (uint8){tag} …", file=sys.stderr)
    for line in run([sys.executable, os.path.join(here, "ort_gemm.py")], feed):
        m, k, n, t, op, med, best, runs = line.split()
        into.keep((int(m), int(k), int(n), int(t), f"ORT {op}"), med, best)
    if torch_python:
        print(f"bench-peers: PyTorch quantized.linear on fbgemm and onednn (uint8), torch._int_mm (int32){tag} …",
              file=sys.stderr)
        names = {"fbgemm": "PyTorch fbgemm", "onednn": "PyTorch onednn", "int_mm": "torch._int_mm"}
        for line in run([torch_python, os.path.join(here, "torch_gemm.py")], feed):
            m, k, n, t, route, med, best, runs = line.split()
            into.keep((int(m), int(k), int(n), int(t), names[route]), med, best)


alone, beside = Timings(), Timings()
neighbour = neighbours.set_up(args, p, args.threads)
for round_index in range(args.rounds):
    tag = f" (round {round_index + 1} of {args.rounds})" if args.rounds > 1 else ""
    # The table's int32 comparison is of runs alone; qgemm's int32 runs are
    # not repeated beside the neighbour.
    neighbours.round_(neighbour, round_index, lambda: time_every_library(alone, tag + (", alone" if neighbour else "")),
                      lambda: time_every_library(beside, tag + f", beside the {args.neighbour} neighbour", int32=False))

doc, doc32, median, fastest, impl = alone.doc, alone.doc32, alone.median, alone.fastest, alone.impl

def strongest(case, values, exact_only=True):
    """The peer with the highest GOP/s in {name: GOP/s or None}, or (None, None);
    by default only among the peers whose arithmetic checks passed (the
    full-range one and this case's)."""
    have = [(name, v) for name, v in values.items() if v and not (exact_only and is_wrong(case, name))]
    return max(have, key=lambda kv: kv[1]) if have else (None, None)


rows = []
for r, r32 in zip(doc["results"], doc32["results"], strict=True):
    case = (r["m"], r["k"], r["n"], r["threads"])
    assert case == (r32["m"], r32["k"], r32["n"], r32["threads"]), "qgemm's int8 and int32 runs timed other cases"
    med = {name: median.get(case + (name,)) for name, _, _ in PEERS}
    run_best = {name: fastest.get(case + (name,)) for name, _, _ in PEERS}
    best_name, best = strongest(case, med)
    fast_name, fast = strongest(case, run_best)
    any_name, any_best = strongest(case, med, exact_only=False)
    any_fast_name, any_fast = strongest(case, run_best, exact_only=False)
    row = {"m": r["m"], "k": r["k"], "n": r["n"], "threads": r["threads"],
           "qgemm_gops": r["int8_gops"], "qgemm_gops_best": r["int8_gops_best"]}
    for name, _, key in PEERS:
        row[f"{key}_gops"] = med[name]
        row[f"{key}_gops_best"] = run_best[name]
        row[f"{key}_exact"] = (not is_wrong(case, name)) if med[name] and is_checked(case, name) else None
    row.update({"onednn_matmul_s8_impl": impl.get(case + ("s8",)),
                "onednn_matmul_s32_impl": impl.get(case + ("s32",)),
                "best_peer": best_name, "best_peer_gops": best,
                "ratio": r["int8_gops"] / best if best else None,
                "best_peer_fastest_run": fast_name, "best_peer_gops_fastest_run": fast,
                "ratio_fastest_runs": r["int8_gops_best"] / fast if fast else None,
                "best_peer_any": any_name, "ratio_any": r["int8_gops"] / any_best if any_best else None,
                "best_peer_fastest_run_any": any_fast_name,
                "ratio_fastest_runs_any": r["int8_gops_best"] / any_fast if any_fast else None,
                "peak_fraction": r["peak_fraction"]})
    # Like for like: qgemm's int32 output against the int32 routes.
    runs32 = {name: run_best[name] for name in INT32_PEERS}
    fast32_name, fast32 = strongest(case, runs32)
    any32_name, any32 = strongest(case, runs32, exact_only=False)
    row.update({"qgemm_int32_gops": r32["int8_gops"], "qgemm_int32_gops_best": r32["int8_gops_best"],
                "best_int32_peer_fastest_run": fast32_name,
                "ratio_int32_fastest_runs": r32["int8_gops_best"] / fast32 if fast32 else None,
                "best_int32_peer_fastest_run_any": any32_name,
                "ratio_int32_fastest_runs_any": r32["int8_gops_best"] / any32 if any32 else None})
    rows.append(row)

# Only the peers that gave numbers get a column.
columns = [(name, short, key) for name, short, key in PEERS if any(row[f"{key}_gops"] for row in rows)]
machine = doc["machine"]
print(f"CPU {machine['cpu']}, {machine['cores']} cores; qgemm {machine['kernel']} ({machine['microkernel']}), "
      f"int8 requantized output; its peak probe ({machine['int8_peak_instruction']}) "
      f"{machine['int8_peak_gops']:.0f} GOP/s per core")
rounds = f"best of {args.rounds} rounds of " if args.rounds > 1 else ""
print("GOP/s = 2·M·N·K / time. Columns: qgemm (int8 out), " + ", ".join(
    f"{short} = {name} ({OUTPUT.get(name, 'int32')} out)" for name, short, _ in columns))
print("caches: cold, evicted before every timed run of every library" if args.cold
      else "caches: warm, runs follow each other")
print("ratio: qgemm / the strongest peer, from medians; fastest: the same from each library's fastest single run "
      "(less touched by a busy neighbour)")
shown = {name for name, _, _ in columns}
timed_cases = [(r["m"], r["k"], r["n"], r["threads"]) for r in rows]
wrong_cases = {key: v for key, v in wrong_at.items() if key[-1] in shown and key[:4] in timed_cases}
any_wrong = any(name in shown for name in wrong) or bool(wrong_cases)
if any(name in shown for name in wrong):
    print("Wrong results on this CPU (full-range operands, 64×256×128, against exact sums): " + "; ".join(
        f"{SHORT[name]} {w:,} of {c:,} values, largest error {e:,}" + (" steps" if OUTPUT.get(name) else "")
        for name, (w, c, e) in wrong.items() if name in shown)
          + ". Marked ✗ and left out of the ratio; 'all' is the ratio to every peer, these included.")
if wrong_cases:
    print("Wrong results at timed cases (the last timed run, up to 8 rows spread over M): " + "; ".join(
        f"{SHORT[name]} at {m}x{k}x{n} on {t} thread(s), {w:,} of {c:,} values, largest error {e:,}"
        + (" steps" if OUTPUT.get(name) else "") for (m, k, n, t, name), (w, c, e) in sorted(wrong_cases.items()))
          + ". Marked ✗ there and left out of that case's ratio.")
unchecked = sorted(SHORT[name] for name in shown if name not in checked and any(v for k, v in median.items() if k[-1] == name))
if unchecked:
    print("Not checked (the harness could not run its check; see its messages above): " + ", ".join(unchecked)
          + ". Marked ? and counted in the ratio.")
unchecked_cases = sorted(key for key, v in median.items() if v and key[-1] in shown and key[-1] in checked
                         and key[:4] in timed_cases and key not in checked_at)
if unchecked_cases:
    print("Timed but not checked at: " + "; ".join(f"{SHORT[name]} at {m}x{k}x{n} on {t} thread(s)"
                                                  for m, k, n, t, name in unchecked_cases)
          + ". Marked ? there and counted in the ratio.")


def f(v, name=None, case=None):
    if not v:
        return f"{'-':>12}"
    if name is None:
        return f"{v:12.1f}"
    return (f"{v:11.1f}✗" if is_wrong(case, name) else f"{v:11.1f}?" if not is_checked(case, name)
            else f"{v:12.1f}")


def shape(row):
    return f"{row['m']}x{row['k']}x{row['n']}"


def ratio(v):
    return f"{v:6.2f}x" if v else f"{'-':>7}"


def table(title, suffix, name_key, ratio_keys, extra=None):
    print()
    print(title)
    print(f"{'shape M×K×N':<16}{'thr':>4}{'qgemm':>12}" + "".join(f"{short:>12}" for _, short, _ in columns)
          + f"  {'strongest':<12}" + "".join(f"{label:>9}" for label, _ in ratio_keys)
          + (f"  {extra[0]}" if extra else ""))
    for row in rows:
        strongest_short = SHORT.get(row[name_key], "-")
        case = (row["m"], row["k"], row["n"], row["threads"])
        print(f"{shape(row):<16}{row['threads']:>4}{f(row['qgemm_gops' + suffix])}"
              + "".join(f(row[f"{key}_gops{suffix}"], name, case) for name, _, key in columns)
              + f"  {strongest_short:<12}" + "".join(f"{ratio(row[k]):>9}" for _, k in ratio_keys)
              + (f"  {extra[1](row)}" if extra else ""))


def int32_table():
    """qgemm's int32 output against the int32 routes, fastest runs."""
    cols = [(name, short, key) for name, short, key in columns if name in INT32_PEERS]
    if not cols:
        return
    some_wrong = any(is_wrong((r["m"], r["k"], r["n"], r["threads"]), name) for name, _, _ in cols for r in rows)
    print()
    print(f"int32 output, like for like: fastest single runs, GOP/s (qgemm-s32: qgemm with int32 output; the "
          f"int8 table's qgemm column requantizes)")
    print(f"{'shape M×K×N':<16}{'thr':>4}{'qgemm-s32':>12}" + "".join(f"{short:>12}" for _, short, _ in cols)
          + f"  {'strongest':<12}{'ratio':>9}" + (f"{'all':>9}" if some_wrong else ""))
    for row in rows:
        case = (row["m"], row["k"], row["n"], row["threads"])
        print(f"{shape(row):<16}{row['threads']:>4}{f(row['qgemm_int32_gops_best'])}"
              + "".join(f(row[f"{key}_gops_best"], name, case) for name, _, key in cols)
              + f"  {SHORT.get(row['best_int32_peer_fastest_run'], '-'):<12}"
              + f"{ratio(row['ratio_int32_fastest_runs']):>9}"
              + (f"{ratio(row['ratio_int32_fastest_runs_any']):>9}" if some_wrong else ""))


def impl_text(row):
    s8, s32 = row["onednn_matmul_s8_impl"], row["onednn_matmul_s32_impl"]
    if not (s8 or s32):
        return "-"
    return s8 if s8 == s32 else f"s8 {s8 or '-'}, s32 {s32 or '-'}"


table(f"medians, GOP/s ({rounds}median time)", "", "best_peer", [("ratio", "ratio"), ("fastest", "ratio_fastest_runs")]
      + ([("all", "ratio_any")] if any_wrong else []))
table(f"fastest single runs, GOP/s ({'over ' + str(args.rounds) + ' rounds, ' if args.rounds > 1 else ''}"
      "shortest time)", "_best", "best_peer_fastest_run", [("ratio", "ratio_fastest_runs")]
      + ([("all", "ratio_fastest_runs_any")] if any_wrong else []),
      ("oneDNN matmul implementation", impl_text) if args.dnnl_matmul else None)
print()
compared = [r for r in rows if r["ratio"]]
if compared:
    worst = min(compared, key=lambda r: r["ratio"])
    print(f"worst ratio: {worst['ratio']:.2f}x at {shape(worst)} on {worst['threads']} thread(s) against "
          f"{worst['best_peer']}")
    worst = min(compared, key=lambda r: r["ratio_fastest_runs"])
    print(f"worst ratio of fastest runs: {worst['ratio_fastest_runs']:.2f}x at {shape(worst)} on "
          f"{worst['threads']} thread(s) against {worst['best_peer_fastest_run']}")
if any_wrong:
    against_all = [r for r in rows if r["ratio_fastest_runs_any"]]
    if against_all:
        worst = min(against_all, key=lambda r: r["ratio_fastest_runs_any"])
        print(f"worst ratio of fastest runs against every peer, wrong ones included: "
              f"{worst['ratio_fastest_runs_any']:.2f}x at {shape(worst)} on {worst['threads']} thread(s) against "
              f"{worst['best_peer_fastest_run_any']}")
int32_table()


def kept_speed():
    """With --neighbour: each library's fastest run beside it over its fastest
    alone, per case, into the rows (JSON "neighbour"), and a table."""
    if not neighbour:
        return
    near = {(r["m"], r["k"], r["n"], r["threads"]): r for r in beside.doc["results"]}
    for row in rows:
        case = (row["m"], row["k"], row["n"], row["threads"])
        gops = {"qgemm": near[case]["int8_gops_best"]}
        kept = {"qgemm": gops["qgemm"] / row["qgemm_gops_best"]}
        kept_median = {"qgemm": near[case]["int8_gops"] / row["qgemm_gops"]}
        for name, _, key in PEERS:
            there, here_alone = beside.fastest.get(case + (name,)), fastest.get(case + (name,))
            if there and here_alone:
                gops[key], kept[key] = there, there / here_alone
                near_median, alone_median = beside.median.get(case + (name,)), median.get(case + (name,))
                kept_median[key] = near_median / alone_median if near_median and alone_median else None
        # Against the peer fastest alone, right or wrong: the question is how
        # each library's speed stands up to the neighbour, not its arithmetic.
        peer = row["best_peer_fastest_run_any"]
        peer_key = next((key for name, _, key in PEERS if name == peer), None)
        row["neighbour"] = {"gops_best": gops, "kept": kept, "kept_median": kept_median, "against_peer": peer,
                            "kept_over_peer": kept["qgemm"] / kept[peer_key] if peer_key in kept else None}
    print()
    print(f"beside a neighbour: {neighbours.description(neighbour)}; fastest single runs beside it, GOP/s, "
          f"and the share each library kept of its speed alone, from fastest runs / from medians; last, qgemm's share "
          f"(fastest runs) over the share of the peer fastest alone (right or wrong)")
    print(f"{'shape M×K×N':<16}{'thr':>4}{'qgemm':>20}" + "".join(f"{short:>20}" for _, short, _ in columns)
          + f"  {'peer':<12}{'qgemm/peer':>11}")

    def cell(row, key):
        n = row["neighbour"]
        if key not in n["kept"]:
            return f"{'-':>19}"
        med = n["kept_median"][key]
        text = f"{n['gops_best'][key]:.1f} {n['kept'][key]:.2f}/" + (f"{med:.2f}" if med else "-")
        return f"{text:>19}"

    for row in rows:
        n = row["neighbour"]
        print(f"{shape(row):<16}{row['threads']:>4} {cell(row, 'qgemm')}" + "".join(f" {cell(row, key)}"
                                                                                   for _, _, key in columns)
              + f"  {SHORT.get(n['against_peer'], '-'):<12}{ratio(n['kept_over_peer']):>11}")
    judged = [r for r in rows if r["neighbour"]["kept_over_peer"]]
    if judged:
        worst = min(judged, key=lambda r: r["neighbour"]["kept_over_peer"])
        print(f"qgemm kept {min(r['neighbour']['kept']['qgemm'] for r in rows):.2f}–"
              f"{max(r['neighbour']['kept']['qgemm'] for r in rows):.2f} of its speed in fastest runs, "
              f"{min(r['neighbour']['kept_median']['qgemm'] for r in rows):.2f}–"
              f"{max(r['neighbour']['kept_median']['qgemm'] for r in rows):.2f} in medians; least against the peer: "
              f"{worst['neighbour']['kept_over_peer']:.2f}x at {shape(worst)} on {worst['threads']} thread(s) "
              f"against {worst['neighbour']['against_peer']}")


kept_speed()
if args.json:
    write_json(args.json, {"machine": machine, "rounds": args.rounds, "caches": "cold" if args.cold else "warm",
                           **({"neighbour": neighbours.for_json(neighbour)} if neighbour else {}),
                           "wrong_results": {name: {"wrong": w, "checked": c, "largest_error": e}
                                             for name, (w, c, e) in wrong.items()},
                           "wrong_at_timed_cases": [{"peer": name, "m": m, "k": k, "n": n, "threads": t, "wrong": w,
                                                     "checked": c, "largest_error": e}
                                                    for (m, k, n, t, name), (w, c, e) in sorted(wrong_at.items())],
                           "results": rows})
if args.png:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    labels = [f"{shape(r)}/{r['threads']}t" for r in compared]
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(compared)), 4.5))
    ax.bar(range(len(compared)), [r["ratio"] for r in compared],
           color=["tab:green" if r["ratio"] >= 1 else "tab:red" for r in compared])
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(compared)), labels, rotation=70, ha="right", fontsize=7)
    ax.set_ylabel("qgemm / strongest peer (GOP/s, medians)")
    ax.set_title(f"qgemm {machine['kernel']} against oneDNN, ONNX Runtime and PyTorch\n{machine['cpu']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(args.png, dpi=110)
    print(f"wrote {args.png}", file=sys.stderr)
