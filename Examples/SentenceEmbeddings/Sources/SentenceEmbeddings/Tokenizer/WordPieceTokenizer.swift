import Foundation
import QGEMM

/// BERT's WordPiece tokenizer, as Hugging Face `tokenizers` runs it for a
/// sentence-transformers checkpoint: special tokens matched in the raw text,
/// `BertNormalizer`, `BertPreTokenizer` (whitespace and punctuation), greedy
/// longest-match WordPiece with a continuation prefix, `[UNK]` for a word it
/// cannot split or that is too long, `[CLS] … [SEP]`, and truncation to the
/// model's length. Its ids equal `tokenizers`' ids (the tests check a list of
/// sentences and adversarial strings against ids `tokenizers` produced).
public struct WordPieceTokenizer: Sendable {
    public let vocabulary: [String: Int32]
    public let unknown: Int32, classification: Int32, separator: Int32, padding: Int32
    public let continuationPrefix: String
    public let maxCharactersPerWord: Int
    /// The longest sequence, special tokens included.
    public let maxLength: Int
    public let normalizer: NormalizerOptions
    /// Tokens matched verbatim in the raw text (`[CLS]`, `[SEP]`, …), by their
    /// first scalar, longest first: each place of the text compares only the
    /// tokens that can start there, so the cost does not grow with their number.
    let addedTokens: [Unicode.Scalar: [(scalars: [Unicode.Scalar], id: Int32)]]

    public init(vocabulary: [String: Int32], unknown: Int32, classification: Int32, separator: Int32, padding: Int32,
                continuationPrefix: String = "##", maxCharactersPerWord: Int = 100, maxLength: Int = 512,
                normalizer: NormalizerOptions = NormalizerOptions(), addedTokens: [(String, Int32)] = []) throws {
        guard maxLength >= 2 else { throw QGEMMError(.invalidValue, "maxLength must be ≥ 2 ([CLS] and [SEP]), got \(maxLength)") }
        // WordPiece's cost grows with the cube of a word's length: the limits tokenizer.json's reader keeps.
        guard (1...1000).contains(maxCharactersPerWord) else {
            throw QGEMMError(.invalidValue, "maxCharactersPerWord must be in 1...1000, got \(maxCharactersPerWord)")
        }
        guard continuationPrefix.count <= 16 else {
            throw QGEMMError(.invalidValue, "continuationPrefix has \(continuationPrefix.count) characters, at most 16")
        }
        self.vocabulary = vocabulary
        self.unknown = unknown
        self.classification = classification
        self.separator = separator
        self.padding = padding
        self.continuationPrefix = continuationPrefix
        self.maxCharactersPerWord = maxCharactersPerWord
        self.maxLength = maxLength
        self.normalizer = normalizer
        let longestFirst = addedTokens.map { (scalars: Array($0.0.unicodeScalars), id: $0.1) }
            .filter { !$0.scalars.isEmpty }.sorted { $0.scalars.count > $1.scalars.count }
        self.addedTokens = Dictionary(grouping: longestFirst, by: { $0.scalars[0] })
    }

    /// The ids of `text`: `[CLS]`, at most `maxLength − 2` content tokens, `[SEP]`.
    public func encode(_ text: String) -> [Int32] {
        var ids = [classification]
        ids += contentTokens(text).prefix(maxLength - 2)
        ids.append(separator)
        return ids
    }

    /// The content tokens of `text`, without `[CLS]`/`[SEP]` or truncation.
    func contentTokens(_ text: String) -> [Int32] {
        let scalars = Array(text.unicodeScalars)
        var ids: [Int32] = []
        var segmentStart = 0, i = 0
        // Added tokens are matched scalar by scalar in the raw text, the
        // longest first at each place, before any normalization.
        while i < scalars.count {
            if let token = addedTokens[scalars[i]]?.first(where: { t in
                i + t.scalars.count <= scalars.count && scalars[i..<(i + t.scalars.count)].elementsEqual(t.scalars)
            }) {
                tokenize(scalars[segmentStart..<i], into: &ids)
                ids.append(token.id)
                i += token.scalars.count
                segmentStart = i
            } else {
                i += 1
            }
        }
        tokenize(scalars[segmentStart...], into: &ids)
        return ids
    }

    /// Normalizes, splits into words and appends each word's pieces.
    func tokenize(_ text: ArraySlice<Unicode.Scalar>, into ids: inout [Int32]) {
        guard !text.isEmpty else { return }
        var word: [Unicode.Scalar] = []
        for s in BertCharacters.normalize(text, normalizer) {
            if BertCharacters.isWhitespace(s) {
                wordPiece(word, into: &ids)
                word.removeAll(keepingCapacity: true)
            } else if BertCharacters.isPunctuation(s) {
                wordPiece(word, into: &ids)
                word.removeAll(keepingCapacity: true)
                wordPiece([s], into: &ids)
            } else {
                word.append(s)
            }
        }
        wordPiece(word, into: &ids)
    }

    /// Greedy longest-match-first pieces of one word; the whole word is
    /// `[UNK]` when it is too long or some part of it matches nothing.
    func wordPiece(_ word: [Unicode.Scalar], into ids: inout [Int32]) {
        guard !word.isEmpty else { return }
        guard word.count <= maxCharactersPerWord else { ids.append(unknown); return }
        var pieces: [Int32] = []
        var start = 0
        while start < word.count {
            var end = word.count
            var found: Int32? = nil
            while end > start {
                var view = String.UnicodeScalarView()
                view.append(contentsOf: word[start..<end])
                let piece = start > 0 ? continuationPrefix + String(view) : String(view)
                if let id = vocabulary[piece] { found = id; break }
                end -= 1
            }
            guard let id = found else { ids.append(unknown); return }
            pieces.append(id)
            start = end
        }
        ids += pieces
    }

    /// Several texts, padded with `[PAD]` to the longest, with the attention
    /// mask (1 for a token, 0 for padding).
    public func encodeBatch(_ texts: [String]) -> TokenBatch {
        TokenBatch(sequences: texts.map(encode), padding: padding)
    }
}

/// Token ids of several sequences, padded to the longest, and their mask.
public struct TokenBatch: Sendable, Equatable {
    /// Each sequence's ids, unpadded.
    public let sequences: [[Int32]]
    /// The longest sequence's length.
    public let paddedLength: Int
    /// [count × paddedLength] ids, `[PAD]` after each sequence.
    public let ids: [Int32]
    /// [count × paddedLength]: 1 for a token, 0 for padding.
    public let attentionMask: [Int32]

    public init(sequences: [[Int32]], padding: Int32) {
        self.sequences = sequences
        paddedLength = sequences.map(\.count).max() ?? 0
        var ids: [Int32] = [], mask: [Int32] = []
        for s in sequences {
            ids += s + [Int32](repeating: padding, count: paddedLength - s.count)
            mask += [Int32](repeating: 1, count: s.count) + [Int32](repeating: 0, count: paddedLength - s.count)
        }
        self.ids = ids
        self.attentionMask = mask
    }

    /// Tokens in all sequences, padding excluded.
    public var tokenCount: Int { sequences.reduce(0) { $0 + $1.count } }
}
