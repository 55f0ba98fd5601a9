// Any bytes given as a checkpoint's config.json are either read into a
// BertConfig whose values are in range, or refused with a QGEMMError.
import FuzzEncoderReaders
import FuzzMutators
import QGEMM

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfigJSON(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    refusedOnlyWithQGEMMError {
        let config = try BertConfig(json: bytes)
        precondition(config.hiddenSize >= 1 && config.attentionHeads >= 1 && config.hiddenSize % config.attentionHeads == 0,
                     "a config with an impossible shape was accepted")
        precondition(config.layerNormEpsilon > 0 && config.layerNormEpsilon < 1, "a bad epsilon was accepted")
        // Every size within the ranges BertConfig states (README: the encoder's limits).
        precondition((1...65_536).contains(config.hiddenSize) && (1...1024).contains(config.attentionHeads)
                     && (1...1024).contains(config.layers) && (1...262_144).contains(config.intermediateSize)
                     && (1...8192).contains(config.maxPositions) && (1...10_000_000).contains(config.vocabularySize)
                     && (1...1024).contains(config.typeVocabularySize), "a size out of its range was accepted: \(config)")
    }
    return 0
}

/// Edits the file as JSON (keys dropped, misspelt, duplicated; values made
/// huge, negative, fractional, strings, NaN), mixed with byte edits.
@_cdecl("LLVMFuzzerCustomMutator")
public func mutateConfigJSON(_ data: UnsafeMutablePointer<UInt8>?, _ size: Int, _ maxSize: Int, _ seed: UInt32) -> Int {
    customMutate(data, size, maxSize, seed) { bytes, maxSize, rng in
        mutateJSONDocument(bytes, maxSize: maxSize, vocabulary: ["hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size",
                                               "max_position_embeddings", "vocab_size", "type_vocab_size", "layer_norm_eps",
                                               "model_type", "bert", "hidden_act", "gelu", "position_embedding_type", "absolute"], &rng)
    }
}
