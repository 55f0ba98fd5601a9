import EncoderKernels
import Foundation
import QGEMM
@testable import SentenceEmbeddings
import Testing

/// The encoder against the NumPy float reference (Fixtures/reference-
/// embeddings.json, written by scripts/encoder-check --write-fixtures):
/// Float within rounding, int8 within the quantization's error.
@Suite("Encoder")
struct EncoderTests {
    struct Reference: Decodable { let sentences: [String]; let embeddings: [[Float]] }

    static func cosine(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }

    @Test func floatAndInt8EmbeddingsMatchTheReference() throws {
        let checkpoint = try TestModel.checkpoint.get()
        let reference = try JSONDecoder().decode(Reference.self, from: try TestModel.fixture("reference-embeddings.json"))
        for (precision, bound) in [(Precision.float, Float(0.99999)), (.int8(.perRow), 0.995), (.int8(.perTensor), 0.99)] {
            let encoder = try SentenceEncoder(checkpoint: checkpoint, precision: precision)
            for threads in [1, 2] {
                let embeddings = try encoder.embed(reference.sentences, threads: threads)
                for (i, (e, r)) in zip(embeddings, reference.embeddings).enumerated() {
                    let c = Self.cosine(e, r)
                    #expect(c >= bound, "\(precision) threads \(threads) sentence \(i): cosine \(c) < \(bound)")
                    #expect(abs(Self.cosine(e, e) - 1) < 1e-5)
                }
            }
        }
    }

    /// Every Linear layer through QuantizedLinear.floatOutput (the ordered
    /// Double sums calibration's Float pass uses): the reference within the
    /// Float bound, one and two threads the same bits; and the calibration
    /// inputs are this pass's layer inputs, not sgemm's.
    @Test func orderedFloatMatchesTheReferenceAndFeedsCalibration() throws {
        let checkpoint = try TestModel.checkpoint.get()
        let reference = try JSONDecoder().decode(Reference.self, from: try TestModel.fixture("reference-embeddings.json"))
        let encoder = try SentenceEncoder(checkpoint: checkpoint, source: { _ in .recipe(.orderedFloat) }, calibration: nil)
        let one = try encoder.embed(reference.sentences, threads: 1)
        #expect(try encoder.embed(reference.sentences, threads: 2) == one)
        for (i, (e, r)) in zip(one, reference.embeddings).enumerated() {
            #expect(Self.cosine(e, r) >= 0.99999, "sentence \(i): cosine \(Self.cosine(e, r))")
        }
        let sentences = Array(reference.sentences.prefix(3))
        let inputs = try CalibrationInputs(checkpoint: checkpoint, sentences: sentences)
        let tap = LinearTap(keepInputs: true, reference: nil)
        var profile = EncoderProfile()
        _ = try encoder.embed(encoder.tokenizer.encodeBatch(sentences), threads: 1, profile: &profile, tap: tap)
        for name in ["0.attention.self.query", "2.intermediate.dense", "5.output.dense"] {
            #expect(inputs.inputs[name] != nil && inputs.inputs[name]?.values == tap.inputs[name]?.values, "\(name)")
        }
        let blas = LinearTap(keepInputs: true, reference: nil)
        _ = try SentenceEncoder(checkpoint: checkpoint, precision: .float).embed(encoder.tokenizer.encodeBatch(sentences), threads: 1,
                                                                               profile: &profile, tap: blas)
        #expect(inputs.inputs["5.output.dense"]?.values != blas.inputs["5.output.dense"]?.values,
                "sgemm's pass gave the same inputs: the check above shows nothing")
    }

    /// Attention's products in int8 (ActivationProduct): the reference within
    /// int8's bound, and batches and threads change no bit.
    @Test func int8AttentionMatchesTheReference() throws {
        let checkpoint = try TestModel.checkpoint.get()
        let reference = try JSONDecoder().decode(Reference.self, from: try TestModel.fixture("reference-embeddings.json"))
        let encoder = try SentenceEncoder(checkpoint: checkpoint, precision: .int8(.perRow), attention: .int8)
        #expect(encoder.attentionProducts == .int8)
        let one = try encoder.embed(reference.sentences, threads: 1)
        #expect(try encoder.embed(reference.sentences, threads: 2) == one)
        for (i, (e, r)) in zip(one, reference.embeddings).enumerated() {
            #expect(Self.cosine(e, r) >= 0.995, "sentence \(i): cosine \(Self.cosine(e, r))")
            #expect(try encoder.embed([reference.sentences[i]], threads: 1)[0] == e)
        }
        let floatAttention = try SentenceEncoder(checkpoint: checkpoint, precision: .int8(.perRow)).embed(reference.sentences)
        #expect(floatAttention != one)
    }

    /// A batch gives each sentence the embedding it gets alone (attention
    /// never crosses sentences), and two threads give one thread's bits.
    @Test func batchingAndThreadsDoNotChangeTheResult() throws {
        let encoder = try SentenceEncoder(checkpoint: try TestModel.checkpoint.get(), precision: .int8(.perRow))
        let sentences = ["A short one.", "A rather longer sentence, with a comma and more words in it.", ""]
        let batched = try encoder.embed(sentences, threads: 1)
        let twoThreads = try encoder.embed(sentences, threads: 2)
        #expect(batched == twoThreads)
        for (s, e) in zip(sentences, batched) {
            #expect(try encoder.embed([s], threads: 1)[0] == e)
        }
        // One sentence on several threads shares every step instead: its
        // heads, and its LayerNorm and GELU rows in pieces on QGEMM's pool
        // (75 tokens: pieces of 37 and 38 rows, or 25, of the 384- and
        // 1,536-wide rows, so that LayerNorm's groups of four rows end
        // elsewhere than in one piece). The same bits as one thread.
        let long = [String](repeating: "the quick brown fox jumps over the lazy dog,", count: 7).joined(separator: " ")
            + " and then some"
        let alone = try encoder.embed([long], threads: 1)
        #expect(try encoder.embed([long], threads: 2) == alone)
        #expect(try encoder.embed([long], threads: 3) == alone)
    }

    /// Sentences shared out over threads are computed in the caller's
    /// floating-point state (here rounding upward), as on one thread: the
    /// shares ran on Dispatch's threads in their own state, round to
    /// nearest, so their sentences came out otherwise.
    @Test func sharesRoundAsTheCallerDoes() throws {
        let encoder = try SentenceEncoder(checkpoint: try TestModel.checkpoint.get(), precision: .int8(.perRow))
        let sentences = ["A short one.", "A rather longer sentence, with a comma and more words in it.", "A third, to share."]
        let nearest = try encoder.embed(sentences, threads: 1)
        // Dispatch's threads made from now on could copy the caller's state
        // when they start: make them while it is the default.
        #expect(try encoder.embed(sentences, threads: 2) == nearest)
        let mode = fegetround()
        fesetround(FE_UPWARD)
        defer { fesetround(mode) }
        let upward = try encoder.embed(sentences, threads: 1)
        // Dispatch may run every share on the calling thread; several calls
        // make it likely that some share runs elsewhere.
        for _ in 0..<8 { #expect(try encoder.embed(sentences, threads: 2) == upward) }
        fesetround(mode)
        #expect(upward != nearest, "rounding upward changed nothing: the test shows nothing")
    }

    /// A batch of more rows than one chunk (the encoder's chunkRowsPerThread)
    /// goes in several, and with two threads in two shares of sentences,
    /// which changes no bit with per-row parameters (and in Float at most
    /// OpenBLAS's rounding); an empty sequence gets an empty embedding, not NaN.
    @Test func chunkedBatchesGiveEachSentenceItsOwnEmbedding() throws {
        let checkpoint = try TestModel.checkpoint.get()
        let long = checkpoint.tokenizer.encode(EvaluationSentences.all.joined(separator: " "))
        let short = checkpoint.tokenizer.encode("A short one.")
        let sequences = [long, short, long, []] + Array(repeating: long, count: 8) + [short, long]
        for precision in [Precision.int8(.perRow), .float] {
            let encoder = try SentenceEncoder(checkpoint: checkpoint, precision: precision)
            #expect(encoder.chunkRowsPerThread == (precision == .float ? SentenceEncoder.floatChunkRowsPerThread
                                                                          : SentenceEncoder.int8ChunkRowsPerThread))
            #expect(sequences.reduce(0) { $0 + $1.count } > 2 * encoder.chunkRowsPerThread)
            var profile = EncoderProfile()
            let batch = TokenBatch(sequences: sequences, padding: checkpoint.tokenizer.padding)
            let together = try encoder.embed(batch, threads: 1, profile: &profile)
            #expect(together[3].isEmpty)
            // Two threads take half of the sentences each.
            let shared = try encoder.embed(batch, threads: 2, profile: &profile)
            if precision != .float { #expect(shared == together) }
            for (i, ids) in sequences.enumerated() where !ids.isEmpty {
                let alone = try encoder.embed(TokenBatch(sequences: [ids], padding: checkpoint.tokenizer.padding), threads: 1, profile: &profile)
                if precision == .float {
                    // OpenBLAS decides how it splits M; on some cores that may round differently.
                    let gap = zip(alone[0], together[i]).map { abs($0 - $1) }.max() ?? .infinity
                    #expect(gap <= 1e-6, "Float sentence \(i): \(gap)")
                } else {
                    #expect(alone[0] == together[i], "int8 sentence \(i)")
                }
                #expect(together[i].allSatisfy { $0.isFinite })
            }
        }
    }

    /// What a share of sentences holds at once, which the shares of a call
    /// must fit in together: its largest chunk, a thread's chunk of rows, or
    /// its longest sentence where that is longer.
    @Test func aSharesWorkingSetIsItsLargestChunk() throws {
        let encoder = try SentenceEncoder(checkpoint: try TestModel.checkpoint.get(), precision: .int8(.perRow))
        let chunk = encoder.chunkRowsPerThread
        #expect(encoder.shareWorkingSetBytes([10, 20]) == encoder.workingSetBytes(rows: 30, longest: 20, threads: 1))
        #expect(encoder.shareWorkingSetBytes([chunk, chunk, 5]) == encoder.workingSetBytes(rows: chunk, longest: chunk, threads: 1))
        #expect(encoder.shareWorkingSetBytes([3, chunk + 9]) == encoder.workingSetBytes(rows: chunk + 9, longest: chunk + 9, threads: 1))
        #expect(encoder.workingSetBytes(rows: 2, longest: 1, threads: 1) > encoder.workingSetBytes(rows: 1, longest: 1, threads: 1))
    }

    /// The shares of a batch on several threads: every sentence in exactly one
    /// share, in order, none empty, each cut nearest its share of the tokens.
    @Test func sharesCoverEverySentenceOnce() {
        #expect(SentenceEncoder.shareBounds([5, 128], workers: 2) == [0, 1, 2])
        #expect(SentenceEncoder.shareBounds([1, 1, 100], workers: 3) == [0, 1, 2, 3])
        #expect(SentenceEncoder.shareBounds([10, 10, 10, 10], workers: 2) == [0, 2, 4])
        #expect(SentenceEncoder.shareBounds([100, 1, 1, 1, 1], workers: 2) == [0, 1, 5])
        #expect(SentenceEncoder.shareBounds([0, 0, 7], workers: 2) == [0, 2, 3] || SentenceEncoder.shareBounds([0, 0, 7], workers: 2) == [0, 1, 3])
        var seed: UInt64 = 3
        for _ in 0..<500 {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            let count = 1 + Int(seed >> 58), workers = 1 + Int((seed >> 40) % UInt64(count))
            let tokens = (0..<count).map { Int((seed >> UInt64(($0 * 7) % 50)) % 130) }
            let b = SentenceEncoder.shareBounds(tokens, workers: workers)
            #expect(b.count == workers + 1 && b.first == 0 && b.last == count)
            #expect(zip(b, b.dropFirst()).allSatisfy { $0 < $1 }, "\(tokens) on \(workers): \(b)")
        }
    }

    /// Q, K and V fused into one int8 layer give the bits of three layers.
    @Test func fusedLayersEqualSeparateLayers() throws {
        var state: UInt64 = 7
        func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2000) / 1000 - 1
        }
        let k = 24, n = 16, rows = 5
        let parts = (0..<3).map { _ in
            BertWeights.Linear(weight: (0..<(n * k)).map { _ in next() }, bias: (0..<n).map { _ in next() }, outputs: n, inputs: k)
        }
        let x = (0..<(rows * k)).map { _ in next() * 3 }
        guard case .quantized(let fused) = try LinearLayer.fused(parts, recipe: .dynamic(.perRow)) else { Issue.record("not quantized"); return }
        let y = try fused(x, rows: rows)
        for (p, part) in parts.enumerated() {
            let alone = try QuantizedLinear(weights: part.weight, outputChannels: n, inputChannels: k, bias: part.bias, mode: .dynamic(.perRow))
            let ya = try alone(x, rows: rows)
            for r in 0..<rows {
                #expect(Array(y[(r * 3 * n + p * n)..<(r * 3 * n + (p + 1) * n)]) == Array(ya[(r * n)..<((r + 1) * n)]))
            }
        }
    }

    /// The attention kernel against attention in Double, for sequence
    /// lengths around its row blocks (6 and 8), its 8-token transposes and
    /// its 16-column blocks, and head sizes with and without a 16-value and
    /// an 8-value rest, with row strides wider than a head; and every copy
    /// of its code this CPU runs (baseline, AVX2, AVX-512) gives the same
    /// bits.
    @Test func attentionKernelMatchesDoubleAttentionAndEveryCopyAgrees() {
        var seed: UInt64 = 12345
        func random() -> Float {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: seed) >> 40) / Float(1 << 23)
        }
        var copiesRun = Set<Int32>(), largest = 0.0
        for d in [8, 12, 16, 24, 32, 44, 64] {
            for t in [1, 2, 5, 6, 7, 8, 9, 12, 13, 15, 16, 17, 18, 31, 33, 64, 100, 128] {
                let ld = 3 * d + 5, ldo = d + 3
                let qkv = (0..<(t * ld)).map { _ in 3 * random() }
                let scale = 1 / Float(d).squareRoot()
                var scratch = [Float](repeating: .nan, count: enc_attention_scratch_count(t, d))
                var outputs: [Int32: [Float]] = [:]
                for copy: Int32 in 0...2 {
                    var out = [Float](repeating: -7, count: t * ldo)
                    let ran = qkv.withUnsafeBufferPointer { b in
                        enc_attention_head_copy(copy, b.baseAddress!, b.baseAddress! + d, b.baseAddress! + 2 * d, ld, t, d,
                                                scale, &out, ldo, &scratch)
                    }
                    if ran == 0 { outputs[copy] = out; copiesRun.insert(copy) }
                }
                let baseline = outputs[0]!
                for (copy, out) in outputs { #expect(out == baseline, "copy \(copy) differs from the baseline, d \(d) t \(t)") }
                var worst = 0.0
                for i in 0..<t {
                    var s = (0..<t).map { j in (0..<d).reduce(0.0) { $0 + Double(qkv[i * ld + $1]) * Double(qkv[j * ld + d + $1]) } * Double(scale) }
                    let m = s.max()!
                    s = s.map { exp($0 - m) }
                    let total = s.reduce(0, +)
                    for c in 0..<ldo {
                        let got = Double(baseline[i * ldo + c])
                        if c >= d { #expect(got == -7, "column \(c) beyond the head was written"); continue }
                        let want = (0..<t).reduce(0.0) { $0 + s[$1] / total * Double(qkv[$1 * ld + 2 * d + c]) }
                        worst = max(worst, abs(got - want))
                    }
                }
                #expect(worst < 2e-5, "d \(d) t \(t): largest error \(worst)")
                largest = max(largest, worst)
            }
        }
        #expect(copiesRun.contains(0))
        print("attention kernel copies run on this CPU: \(copiesRun.sorted()); largest error \(largest)")
    }

    /// A weight whose exponential is below Float's normal range is 0, not
    /// ~1e-38: with a value of 1e38 in V at that token, the floor added
    /// about 1 to every context value (2.22 where the answer is 1), in every
    /// copy of the kernel.
    @Test func aVanishingWeightCarriesNoHugeValue() {
        let t = 2, d = 16, ld = 3 * d
        var qkv = [Float](repeating: 0, count: t * ld)
        for r in 0..<t { qkv[r * ld] = 400 }          // Q: both rows [400, 0, …]
        qkv[1 * ld + d] = -400                         // K: token 0 zeros, token 1 [−400, 0, …]
        for c in 0..<d { qkv[0 * ld + 2 * d + c] = 1; qkv[1 * ld + 2 * d + c] = 1e38 } // V
        var scratch = [Float](repeating: .nan, count: enc_attention_scratch_count(t, d))
        var ran = 0
        for copy: Int32 in 0...2 {
            var out = [Float](repeating: -7, count: t * d)
            let status = qkv.withUnsafeBufferPointer { b in
                enc_attention_head_copy(copy, b.baseAddress!, b.baseAddress! + d, b.baseAddress! + 2 * d, ld, t, d, 0.25, &out, d, &scratch)
            }
            guard status == 0 else { continue }
            ran += 1
            #expect(out == [Float](repeating: 1, count: t * d), "copy \(copy): \(out.prefix(2))")
        }
        #expect(ran >= 1)
        var e: [Float] = [-87.31, -100, -.infinity, -87.2]
        enc_exp(e, &e, e.count)
        #expect(e[0] == 0 && e[1] == 0 && e[2] == 0 && e[3] > 0, "\(e)")
    }

    /// The branch-free erf and exp the C kernels use, against libm in Double
    /// over their whole range: erf within 5e-7 absolute, exp within 2e-7
    /// relative (the bounds encoder_kernels.h states).
    @Test func erfAndExpApproximationsKeepTheirBounds() {
        let xs = (0...200_000).map { Float(-6 + 12 * Double($0) / 200_000) }
        var y = [Float](repeating: 0, count: xs.count)
        enc_erf(xs, &y, xs.count)
        let erfError = zip(xs, y).map { abs(Double($1) - erf(Double($0))) }.max() ?? .infinity
        #expect(erfError <= 5e-7, "erf error \(erfError)")
        let es = (0...200_000).map { Float(-87 + 175 * Double($0) / 200_000) }
        enc_exp(es, &y, es.count)
        let expError = zip(es, y).map { abs(Double($1) / exp(Double($0)) - 1) }.max() ?? .infinity
        #expect(expError <= 2e-7, "exp relative error \(expError)")
    }
}
