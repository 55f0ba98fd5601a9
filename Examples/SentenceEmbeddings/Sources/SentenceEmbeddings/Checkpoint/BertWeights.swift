import Foundation
import QGEMM

/// The float weights of a BERT encoder, read from a safetensors file by the
/// names Hugging Face uses (with or without a `bert.` prefix), F32 or F16.
/// Every tensor's presence, dtype and shape is checked against the config; a
/// problem is a ``QGEMMError`` (`.file`) naming the file and the tensor.
public struct BertWeights: Sendable {
    /// One Linear layer: W [outputs×inputs] row-major, b [outputs].
    public struct Linear: Sendable {
        public var weight: [Float]
        public var bias: [Float]
        public var outputs: Int, inputs: Int
    }

    /// LayerNorm's scale and shift.
    public struct Norm: Sendable {
        public var gamma: [Float]
        public var beta: [Float]
    }

    /// One encoder layer.
    public struct Layer: Sendable {
        public var query: Linear, key: Linear, value: Linear
        public var attentionOutput: Linear
        public var attentionNorm: Norm
        public var intermediate: Linear
        public var output: Linear
        public var outputNorm: Norm

        /// The Linear layers in the order of ``SentenceEncoder/linearNames(layer:)``.
        public var linears: [Linear] { [query, key, value, attentionOutput, intermediate, output] }
    }

    public var wordEmbeddings: [Float]
    public var positionEmbeddings: [Float]
    public var tokenTypeEmbeddings: [Float]
    public var embeddingNorm: Norm
    public var layers: [Layer]

    public init(contentsOf url: URL, config: BertConfig) throws {
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(contentsOf: url) } catch let e as QGEMMError {
            throw QGEMMError(.file, e.message) // which begins with the file's path
        }
        try self.init(file: file, config: config, name: url.path)
    }

    /// The weights in `file`; `name` names it in errors.
    public init(file: SafeTensorsFile, config c: BertConfig, name: String = "model.safetensors") throws {
        let prefix = file.tensors["embeddings.word_embeddings.weight"] == nil && file.tensors["bert.embeddings.word_embeddings.weight"] != nil
            ? "bert." : ""
        func tensor(_ key: String, _ shape: [Int]) throws -> [Float] {
            let full = prefix + key
            guard let t = file.tensors[full] else { throw QGEMMError(.file, "\(name): no tensor '\(full)'") }
            guard t.shape == shape else {
                throw QGEMMError(.file, "\(name): tensor '\(full)' has shape \(t.shape), the config needs \(shape)")
            }
            guard let values = t.float32Values ?? t.float16Values else {
                throw QGEMMError(.file, "\(name): tensor '\(full)' is \(t.dtype.rawValue); expected F32 or F16")
            }
            guard values.allSatisfy(\.isFinite) else { throw QGEMMError(.file, "\(name): tensor '\(full)' holds NaN or infinity") }
            return values
        }
        func linear(_ key: String, _ outputs: Int, _ inputs: Int) throws -> Linear {
            Linear(weight: try tensor(key + ".weight", [outputs, inputs]), bias: try tensor(key + ".bias", [outputs]),
                   outputs: outputs, inputs: inputs)
        }
        func norm(_ key: String) throws -> Norm {
            Norm(gamma: try tensor(key + ".weight", [c.hiddenSize]), beta: try tensor(key + ".bias", [c.hiddenSize]))
        }
        let h = c.hiddenSize
        // Every tensor becomes Float while the file's bytes are still held
        // (twice an F16 file's bytes, beside them): refused before it starts
        // where the two would not fit, as a file too large to read is.
        let perLayer = [4 * h * h, 2 * h * c.intermediateSize, 9 * h, c.intermediateSize]
        let floatCounts = [c.vocabularySize * h, c.maxPositions * h, c.typeVocabularySize * h, 2 * h]
            + Array(repeating: perLayer, count: c.layers).flatMap { $0 }
        let held = file.tensors.values.reduce(0) { $0 + $1.bytes.count }
        let (floatBytes, overflow) = floatCounts.reduce(0, +).multipliedReportingOverflow(by: MemoryLayout<Float>.stride)
        let memory = CPUFeatures.usableMemoryBytes()
        guard !overflow, UInt64(floatBytes) + UInt64(held) <= memory else {
            throw QGEMMError(.file, "\(name): its weights as Float (\(floatBytes >> 20) MiB) beside the file's \(held >> 20) MiB "
                             + "would exceed the \(memory >> 20) MiB this process may use")
        }
        wordEmbeddings = try tensor("embeddings.word_embeddings.weight", [c.vocabularySize, h])
        positionEmbeddings = try tensor("embeddings.position_embeddings.weight", [c.maxPositions, h])
        tokenTypeEmbeddings = try tensor("embeddings.token_type_embeddings.weight", [c.typeVocabularySize, h])
        embeddingNorm = try norm("embeddings.LayerNorm")
        layers = try (0..<c.layers).map { l in
            let p = "encoder.layer.\(l)."
            return Layer(query: try linear(p + "attention.self.query", h, h), key: try linear(p + "attention.self.key", h, h),
                         value: try linear(p + "attention.self.value", h, h),
                         attentionOutput: try linear(p + "attention.output.dense", h, h),
                         attentionNorm: try norm(p + "attention.output.LayerNorm"),
                         intermediate: try linear(p + "intermediate.dense", c.intermediateSize, h),
                         output: try linear(p + "output.dense", h, c.intermediateSize),
                         outputNorm: try norm(p + "output.LayerNorm"))
        }
        // Layers past num_hidden_layers would be left out without a word: a
        // shorter model than the file's, and a wrong embedding.
        let layerPrefix = prefix + "encoder.layer."
        for key in file.tensors.keys.sorted() where key.hasPrefix(layerPrefix) {
            let index = key.dropFirst(layerPrefix.count).prefix { $0.isASCII && $0.isNumber }
            if let l = Int(index), l >= c.layers {
                throw QGEMMError(.file, "\(name): tensor '\(key)' is of layer \(l), past the num_hidden_layers \(c.layers) of config.json")
            }
        }
    }
}
