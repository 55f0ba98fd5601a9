import Dispatch
import Foundation
import QGEMM
import SentenceEmbeddings

/// `embed --bench`: int8 against Float on the same encoder code (and with
/// `--layers DIR`, the saved layers beside them), batches of
/// 1, 8 and 32 sentences at the evaluation sentences' own lengths and at
/// 128 tokens (or the tokenizer's longest, if shorter), on each thread count; fastest and median of the timed runs, and
/// where their time went (int8 layers in their two halves, so that the
/// input quantization is timed apart from the GEMM).
struct EncoderBench {
    let checkpoint: Checkpoint
    let granularity: QuantizedLinear.InputGranularity
    let threads: [Int]
    let repeatCount: Int
    let includeFloat: Bool
    let json: Bool
    /// The int8 encoder's attention products.
    let attention: AttentionProducts
    /// `--layers DIR`: the encoder of the saved layers, timed beside the others.
    let savedLayers: SentenceEncoder?

    struct Case: Codable {
        let precision: String
        let threads: Int
        let batch: Int
        let tokens: String
        let tokens_per_batch: Int
        let ms_per_batch_best: Double
        let ms_per_batch_median: Double
        let sentences_per_second: Double
        let profile_seconds: EncoderProfile
        /// The saved layers' kinds (`SentenceEncoder.savedLayersSummary`); nil for int8 and Float.
        var layers: String? = nil
    }

    /// The long texts' length: 128 tokens, as the peers' scripts time them
    /// (all-MiniLM-L6-v2 truncates at 256), or the tokenizer's longest.
    var longTokens: Int { min(128, checkpoint.tokenizer.maxLength) }

    /// Batches of `size` sentences: the evaluation sentences in order, or
    /// long texts of `longTokens` tokens.
    func batches(size: Int, long: Bool, tokenizer: WordPieceTokenizer) -> [TokenBatch] {
        let sentences = EvaluationSentences.all
        if long {
            // All sentences in one text: far more tokens than any model
            // takes, which the tokenizer cuts to [CLS], the tokens, [SEP];
            // this cut keeps [CLS] and longTokens − 2 of them, then [SEP].
            let ids = tokenizer.encode(sentences.joined(separator: " "))
            let cut = ids.count > longTokens ? Array(ids.prefix(longTokens - 1)) + [tokenizer.separator] : ids
            return [TokenBatch(sequences: [[Int32]](repeating: cut, count: size), padding: tokenizer.padding)]
        }
        // 32 sentences in all: one batch of 32, four of 8, or 32 of one.
        let first = Array(sentences.prefix(32))
        return stride(from: 0, to: first.count, by: size).map { tokenizer.encodeBatch(Array(first[$0..<min($0 + size, first.count)])) }
    }

    func run() throws {
        var encoders: [(String, SentenceEncoder)] = [(attention == .int8 ? "int8, int8 attention" : "int8",
                                                      try SentenceEncoder(checkpoint: checkpoint, precision: .int8(granularity), attention: attention))]
        if let savedLayers { encoders.append(("saved layers", savedLayers)) }
        if includeFloat { encoders.append(("Float", try SentenceEncoder(checkpoint: checkpoint, precision: .float))) }
        var cases: [Case] = []
        for t in threads {
            for long in [false, true] {
                for size in [1, 8, 32] {
                    let work = batches(size: size, long: long, tokenizer: checkpoint.tokenizer)
                    let first = cases.count  // this batch's int8 case
                    for (name, encoder) in encoders {
                        cases.append(try measure(encoder, name, work, threads: t, batch: size, long: long))
                        if encoder === savedLayers { cases[cases.count - 1].layers = encoder.savedLayersSummary }
                        // With --json the same line goes to stderr: the run takes a minute or more,
                        // and stdout carries the JSON alone.
                        report(cases[cases.count - 1], against: cases.count - 1 > first ? cases[first] : nil, toStandardError: json)
                    }
                }
            }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(cases), as: UTF8.self))
        }
    }

    func measure(_ encoder: SentenceEncoder, _ name: String, _ work: [TokenBatch], threads: Int, batch: Int, long: Bool) throws -> Case {
        var scratch = EncoderProfile()
        for b in work { _ = try encoder.embed(b, threads: threads, profile: &scratch) }  // warm up
        var times: [Double] = []
        var profile = EncoderProfile()  // over the timed runs
        for _ in 0..<repeatCount {
            // A monotonic clock: the wall clock can be set back during a run.
            let start = DispatchTime.now().uptimeNanoseconds
            for b in work { _ = try encoder.embed(b, threads: threads, profile: &profile) }
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9 / Double(work.count))
        }
        // Seconds per batch, the mean over the timed runs.
        let runs = Double(repeatCount * work.count)
        profile.linear /= runs; profile.quantization /= runs; profile.attention /= runs; profile.rest /= runs
        let sorted = times.sorted(), middle = sorted.count / 2
        // The median as qgemm bench and the peers take it: the mean of the two middle runs of an even count.
        let best = sorted[0], median = sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
        let tokens = work.reduce(0) { $0 + $1.tokenCount } / work.count
        return Case(precision: name, threads: threads, batch: batch,
                    tokens: long ? "\(longTokens)" : "evaluation sentences",
                    tokens_per_batch: tokens, ms_per_batch_best: best * 1e3, ms_per_batch_median: median * 1e3,
                    sentences_per_second: Double(batch) / best, profile_seconds: profile)
    }

    func report(_ c: Case, against int8: Case?, toStandardError: Bool = false) {
        let p = c.profile_seconds, total = max(p.total, 1e-12)
        func pct(_ v: Double) -> String { String(format: "%4.0f%%", 100 * v / total) }
        var line = String(format: "%-12@ threads %d batch %2d %-20@ %5d tok: %8.2f ms/batch (median %8.2f) %8.1f sent/s", c.precision as NSString, c.threads, c.batch,
                          c.tokens as NSString, c.tokens_per_batch, c.ms_per_batch_best, c.ms_per_batch_median, c.sentences_per_second)
        if c.precision == "Float" {
            line += "  sgemm \(pct(p.linear))"
        } else if c.precision == "saved layers" {
            // Their calls quantize their input inside: one figure for both.
            line += "  Linear layers \(pct(p.linear))"
        } else {
            line += "  GEMM \(pct(p.linear - p.quantization)) quantize \(pct(p.quantization))"
        }
        line += " attention \(pct(p.attention)) rest \(pct(p.rest))"
        // Float: how much faster int8 runs; saved layers: how much faster they run than int8.
        if let int8 = int8, c.precision == "Float" {
            line += String(format: "  int8 speedup %.2f×", c.ms_per_batch_best / int8.ms_per_batch_best)
        } else if let int8 = int8 {
            line += String(format: "  speedup over int8 %.2f×", int8.ms_per_batch_best / c.ms_per_batch_best)
        }
        if toStandardError { FileHandle.standardError.write(Data((line + "\n").utf8)) } else { print(line) }
    }
}
