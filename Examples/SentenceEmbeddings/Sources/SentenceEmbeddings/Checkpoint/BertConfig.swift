import Foundation
import QGEMM

/// The parts of a BERT `config.json` the encoder needs, each checked: a
/// missing key, a value of the wrong type or out of range, or an architecture
/// this encoder does not run is refused with a ``QGEMMError`` (`.file`) that
/// names the file and the key.
///
/// Its values can only come from a checked file: a caller cannot set one
/// out of range (no layers, zero heads) after the check.
public struct BertConfig: Sendable, Equatable {
    public private(set) var hiddenSize: Int
    public private(set) var attentionHeads: Int
    public private(set) var layers: Int
    public private(set) var intermediateSize: Int
    public private(set) var maxPositions: Int
    public private(set) var vocabularySize: Int
    public private(set) var typeVocabularySize: Int
    public private(set) var layerNormEpsilon: Float
    /// `tokenizer_class` as written (nil where absent or null): transformers
    /// picks the tokenizer by it where `tokenizer_config.json` names none.
    public private(set) var tokenizerClass: String?

    /// Width of one attention head.
    public var headSize: Int { hiddenSize / attentionHeads }

    public init(contentsOf url: URL) throws {
        try self.init(json: try JSONFile.read(url, limit: JSONFile.configBytes), file: url.path)
    }

    /// Parses `config.json` bytes; `file` names the file in errors.
    public init(json bytes: [UInt8], file: String = "config.json") throws {
        func fail(_ why: String) -> QGEMMError { QGEMMError(.file, "\(file): \(why)") }
        let json = try JSONFile.object(bytes, file: file)
        func integer(_ key: String, _ range: ClosedRange<Int>) throws -> Int {
            guard let value = json[key] else { throw fail("no '\(key)'") }
            guard let n = JSONFile.number(value) else { throw fail("'\(key)' is not a number") }
            guard let v = JSONFile.wholeNumber(n), range.contains(v) else {
                throw fail("'\(key)' is \(value), expected a whole number in \(range.lowerBound)...\(range.upperBound)")
            }
            return v
        }
        if let type = json["model_type"], (type as? String) != "bert" {
            throw fail("model_type is '\(type)'; this encoder runs BERT models")
        }
        if let act = json["hidden_act"], (act as? String) != "gelu" {
            throw fail("hidden_act is '\(act)'; this encoder implements the erf GELU ('gelu')")
        }
        if let position = json["position_embedding_type"], (position as? String) != "absolute" {
            throw fail("position_embedding_type is '\(position)'; this encoder implements 'absolute'")
        }
        // A decoder's self-attention is causal (BertModel masks every later
        // token), where this encoder's attends to the whole sentence.
        if let decoder = json["is_decoder"], !(decoder is NSNull) {
            guard let isDecoder = JSONFile.boolean(decoder) else { throw fail("'is_decoder' is \(decoder), not true or false") }
            if isDecoder { throw fail("'is_decoder' is true: BertModel then attends to earlier tokens only; this encoder attends to all") }
        }
        if let type = json["tokenizer_class"], !(type is NSNull) { tokenizerClass = type as? String ?? "\(type)" }
        hiddenSize = try integer("hidden_size", 1...65_536)
        attentionHeads = try integer("num_attention_heads", 1...1024)
        layers = try integer("num_hidden_layers", 1...1024)
        intermediateSize = try integer("intermediate_size", 1...262_144)
        // Attention keeps a tokens × tokens block of scores per head; every
        // text takes [CLS] and [SEP].
        maxPositions = try integer("max_position_embeddings", 2...8192)
        vocabularySize = try integer("vocab_size", 1...10_000_000)
        typeVocabularySize = try integer("type_vocab_size", 1...1024)
        guard hiddenSize % attentionHeads == 0 else {
            throw fail("hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(attentionHeads)")
        }
        if let eps = json["layer_norm_eps"] {
            // Judged as the Float the encoder uses: 1e-92 is in (0, 1) but
            // rounds to 0 there, which would leave LayerNorm unguarded.
            guard let n = JSONFile.number(eps), n.floatValue.isFinite,
                  n.floatValue > 0, n.floatValue < 1 else {
                throw fail("'layer_norm_eps' is \(eps), expected a number in (0, 1) that a Float holds (at least 1.4e-45)")
            }
            layerNormEpsilon = n.floatValue
        } else {
            layerNormEpsilon = 1e-12
        }
    }
}
