// Any bytes given as a checkpoint's tokenizer.json are either read into a
// WordPiece tokenizer, which then encodes text into ids of its vocabulary
// (never past its length), or refused with a QGEMMError.
import FuzzEncoderReaders
import FuzzMutators
import QGEMM

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTokenizerJSON(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    refusedOnlyWithQGEMMError {
        let tokenizer = try WordPieceTokenizer(json: bytes)
        let ids = Set(tokenizer.vocabulary.values)
        for text in ["Hello, World! naïve 中文 [CLS] x", "", String(decoding: bytes.prefix(64), as: UTF8.self)] {
            let encoded = tokenizer.encode(text)
            precondition(encoded.count <= tokenizer.maxLength, "encode made more than maxLength ids")
            precondition(encoded.allSatisfy { ids.contains($0) || $0 == tokenizer.unknown }, "an id outside the vocabulary")
        }
    }
    return 0
}

/// Edits the file as JSON (the model, normalizer, vocabulary, added tokens
/// and truncation), mixed with byte edits.
@_cdecl("LLVMFuzzerCustomMutator")
public func mutateTokenizerJSON(_ data: UnsafeMutablePointer<UInt8>?, _ size: Int, _ maxSize: Int, _ seed: UInt32) -> Int {
    customMutate(data, size, maxSize, seed) { bytes, maxSize, rng in
        mutateJSONDocument(bytes, maxSize: maxSize, vocabulary: ["model", "type", "WordPiece", "vocab", "unk_token", "[UNK]", "[CLS]", "[SEP]", "[PAD]",
                                               "continuing_subword_prefix", "##", "max_input_chars_per_word", "normalizer",
                                               "BertNormalizer", "clean_text", "handle_chinese_chars", "strip_accents", "lowercase",
                                               "pre_tokenizer", "BertPreTokenizer", "truncation", "max_length", "added_tokens",
                                               "content", "id"], &rng)
    }
}
