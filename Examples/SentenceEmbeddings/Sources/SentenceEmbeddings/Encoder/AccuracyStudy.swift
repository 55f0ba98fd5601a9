import Foundation
import QGEMM

/// One configuration of the encoder's Linear layers measured the way
/// `scripts/minilm-check` reports it: the embeddings of the evaluation
/// sentences, each layer's SQNR against its Float layer on the same input
/// (in that pass), each 4-bit layer's SQNR against the int8 layer it could
/// replace (dynamic per-row, from the same Float weights, on the same
/// input), and each calibrated layer's SQNR on its calibration inputs (the
/// Float pass's), which picks the layers a mixed configuration keeps static.
public struct AccuracyStudy: Sendable, Codable {
    public var label: String
    public var embeddings: [[Float]]
    public var layerSQNR: [String: Double]
    /// The 4-bit layers' SQNR against the int8 layer (dynamic per-row) on
    /// the same input; empty when no layer has 4-bit weights.
    public var layerSQNRAgainstInt8: [String: Double]
    public var calibrationSQNR: [String: Double]
    /// Each layer's mode: its recipe's ``LayerRecipe/modeName``.
    public var modes: [String: String]

    /// Builds the encoder with `recipe`, embeds `evaluation` in one batch on
    /// `threads` threads (the embeddings do not depend on it), and measures
    /// every layer.
    public init(label: String, checkpoint: Checkpoint, recipe: (String) throws -> LayerRecipe,
                calibration: CalibrationInputs?, evaluation: [String], threads: Int = 1) throws {
        let encoder = try SentenceEncoder(checkpoint: checkpoint, recipe: recipe, calibration: calibration)
        var reference: [String: BertWeights.Linear] = [:], modes: [String: String] = [:]
        var int8: [String: QuantizedLinear] = [:]
        for (l, layer) in checkpoint.weights.layers.enumerated() {
            for (name, part) in zip(SentenceEncoder.linearNames(layer: l), layer.linears) {
                reference[name] = part
                let mode = try recipe(name).modeName
                modes[name] = mode
                if mode.hasPrefix("int4") {
                    int8[name] = try QuantizedLinear(weights: part.weight, outputChannels: part.outputs, inputChannels: part.inputs,
                                                     bias: part.bias, mode: .dynamic(.perRow))
                }
            }
        }
        let tap = LinearTap(keepInputs: false, reference: reference, int8Reference: int8)
        var profile = EncoderProfile()
        embeddings = try encoder.embed(encoder.tokenizer.encodeBatch(evaluation), threads: threads, profile: &profile, tap: tap)
        layerSQNR = tap.sqnr
        layerSQNRAgainstInt8 = tap.sqnrAgainstInt8
        var onCalibration: [String: Double] = [:]
        for (name, layer) in encoder.calibratedLayers {
            guard let inputs = calibration?.inputs[name], let part = reference[name] else { continue }
            let y = try layer(inputs.values, rows: inputs.rows)
            let one = LinearTap(keepInputs: false, reference: [name: part])
            try one.record([name], input: inputs.values, rows: inputs.rows, k: part.inputs, output: y, outputs: part.outputs)
            onCalibration[name] = one.sqnr[name]
        }
        calibrationSQNR = onCalibration
        self.label = label
        self.modes = modes
    }
}
