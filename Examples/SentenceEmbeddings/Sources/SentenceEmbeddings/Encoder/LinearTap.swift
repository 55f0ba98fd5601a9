import Foundation
import QGEMM

/// The inputs of every Linear layer in a Float pass over calibration
/// sentences (all sentences stacked, row by row), by layer name
/// (``SentenceEncoder/linearNames(layer:)``): what calibrated layers' observers see.
public struct CalibrationInputs: Sendable {
    /// One layer's inputs, row-major [rows×K].
    public struct Layer: Sendable {
        public var values: [Float]
        public var rows: Int
    }

    public let inputs: [String: Layer]
    /// The number of sentences they come from.
    public let sentences: Int

    /// Runs the Float encoder over `sentences` and keeps each layer's input;
    /// every Linear layer through ``LayerRecipe/orderedFloat``, so that the
    /// inputs, and the layers calibrated on them, are the same bits on every
    /// machine.
    /// Refuses sentences whose kept inputs (hidden_size·3 + intermediate_size
    /// floats per token and layer: query, key and value share one copy of
    /// their input) would take more than half of the memory this process may
    /// use (CPUFeatures.usableMemoryBytes: a container's limit, where lower
    /// than the machine's).
    public init(checkpoint: Checkpoint, sentences: [String]) throws {
        guard !sentences.isEmpty else { throw QGEMMError(.invalidArgument, "calibration needs at least one sentence") }
        let encoder = try SentenceEncoder(checkpoint: checkpoint, source: { _ in .recipe(.orderedFloat) }, calibration: nil)
        let batch = encoder.tokenizer.encodeBatch(sentences)
        let c = checkpoint.config
        let bytes = 4 * Double(batch.tokenCount) * Double(checkpoint.weights.layers.count) * Double(3 * c.hiddenSize + c.intermediateSize)
        let usable = Double(CPUFeatures.usableMemoryBytes())
        guard bytes <= usable / 2 else {
            throw QGEMMError(.invalidShape, String(format: "calibration on %d sentences (%d tokens) would keep %.1f GiB of layer inputs, more than half of the %.1f GiB this process may use",
                                                  sentences.count, batch.tokenCount, bytes / 1_073_741_824, usable / 1_073_741_824))
        }
        let tap = LinearTap(keepInputs: true, reference: nil)
        var profile = EncoderProfile()
        _ = try encoder.embed(batch, threads: 1, profile: &profile, tap: tap)
        inputs = tap.inputs
        self.sentences = sentences.count
    }
}

/// Watches an encoder's Linear layers: keeps each layer's inputs, and with
/// the Float weights, measures each layer's output against the Float layer
/// on the same input (the signal-to-quantization-noise ratio); with int8
/// layers as well, the outputs of the layers they name against them too (how
/// much a 4-bit layer adds to the noise of the int8 layer it could replace).
final class LinearTap {
    /// Each layer's inputs; layers called together on one input (query, key
    /// and value) share one array (copy-on-write: one copy in memory).
    var inputs: [String: CalibrationInputs.Layer] {
        var all = kept
        for (name, first) in sharing { all[name] = kept[first] }
        return all
    }
    private var kept: [String: CalibrationInputs.Layer] = [:]
    private var sharing: [String: String] = [:]  // layer → the layer whose kept inputs are also its own
    private var signal: [String: Double] = [:], noise: [String: Double] = [:]
    private var int8Signal: [String: Double] = [:], int8Noise: [String: Double] = [:]
    let keepInputs: Bool
    let reference: [String: BertWeights.Linear]?
    /// The layers to measure against an int8 layer too, by name.
    let int8Reference: [String: QuantizedLinear]

    init(keepInputs: Bool, reference: [String: BertWeights.Linear]?, int8Reference: [String: QuantizedLinear] = [:]) {
        self.keepInputs = keepInputs
        self.reference = reference
        self.int8Reference = int8Reference
    }

    /// One call of the layers `names` (side by side in `output`, `outputs`
    /// columns in all) on `input` (`rows` rows of `k` values).
    func record(_ names: [String], input: [Float], rows: Int, k: Int, output: [Float], outputs total: Int) throws {
        if keepInputs, let first = names.first {
            kept[first, default: CalibrationInputs.Layer(values: [], rows: 0)].values += input.prefix(rows * k)
            kept[first]?.rows += rows
            for name in names.dropFirst() { sharing[name] = first }
        }
        guard let reference else { return }
        var column = 0
        for name in names {
            guard let part = reference[name] else { throw QGEMMError(.invalidArgument, "no Float weights for layer \(name)") }
            let n = part.outputs
            guard part.inputs == k else { throw QGEMMError(.invalidShape, "layer \(name) takes \(part.inputs) inputs, not \(k)") }
            // The Float layer as QuantizedLinear.floatOutput gives it: the same bits on every machine.
            let x = Array(input.prefix(rows * k))
            let y = try QuantizedLinear.floatOutput(weights: part.weight, outputChannels: n, inputChannels: k, bias: part.bias,
                                                    input: x, rows: rows)
            let (s, e) = Self.signalAndNoise(want: y, got: output, rows: rows, outputs: n, column: column, of: total)
            signal[name, default: 0] += s
            noise[name, default: 0] += e
            if let int8 = int8Reference[name] {
                guard int8.outputChannels == n, int8.inputChannels == k else {
                    throw QGEMMError(.invalidShape, "the int8 layer beside \(name) is \(int8.outputChannels)×\(int8.inputChannels), not \(n)×\(k)")
                }
                let (s8, e8) = Self.signalAndNoise(want: try int8(x, rows: rows), got: output, rows: rows, outputs: n, column: column,
                                                   of: total)
                int8Signal[name, default: 0] += s8
                int8Noise[name, default: 0] += e8
            }
            column += n
        }
    }

    /// Σ want² and Σ (want − got)² over `rows` rows of `want` (`outputs`
    /// columns) against columns `column` … of `got` (`total` columns a row).
    private static func signalAndNoise(want: [Float], got: [Float], rows: Int, outputs n: Int, column: Int,
                                       of total: Int) -> (Double, Double) {
        var s = 0.0, e = 0.0
        for r in 0..<rows {
            for j in 0..<n {
                let w = Double(want[r * n + j]), g = Double(got[r * total + column + j])
                s += w * w
                e += (w - g) * (w - g)
            }
        }
        return (s, e)
    }

    private static func decibels(signal: [String: Double], noise: [String: Double]) -> [String: Double] {
        signal.reduce(into: [:]) { out, entry in
            let e = noise[entry.key] ?? 0
            out[entry.key] = e == 0 ? .infinity : 10 * log10(entry.value / e)
        }
    }

    /// Each measured layer's SQNR in dB (infinite when exact).
    var sqnr: [String: Double] { Self.decibels(signal: signal, noise: noise) }

    /// The SQNR in dB of each layer named in `int8Reference` against its int8
    /// layer on the same input (infinite when the same bits).
    var sqnrAgainstInt8: [String: Double] { Self.decibels(signal: int8Signal, noise: int8Noise) }
}
