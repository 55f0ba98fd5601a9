import Foundation
import QGEMM

/// BERT's WordPiece tokenizer, as Hugging Face `tokenizers` runs it for a
/// sentence-transformers checkpoint: special tokens matched in the raw text,
/// `BertNormalizer`, `BertPreTokenizer` (whitespace and punctuation), greedy
/// longest-match WordPiece with a continuation prefix, `[UNK]` for a word it
/// cannot split or that is too long, `[CLS] … [SEP]`, and truncation to the
/// model's length. Its ids equal `tokenizers`' ids (the tests check a list of
/// sentences and adversarial strings against ids `tokenizers` produced).
///
/// Pieces match the vocabulary's entries scalar for scalar, as `tokenizers`
/// compares bytes: a decomposed "é" (e and U+0301) does not match the entry
/// "é" (U+00E9), though Swift's `String` calls them equal. (So a vocabulary
/// cannot hold two canonically equivalent entries, such as U+00C5 and
/// U+212B: a `[String: Int32]` keeps one of them, and so does the reading
/// of `tokenizer.json`. No uncased checkpoint's vocabulary has such pairs:
/// it is decomposed already.)
public struct WordPieceTokenizer: Sendable {
    public let vocabulary: [String: Int32]
    public let unknown: Int32, classification: Int32, separator: Int32, padding: Int32
    public let continuationPrefix: String
    public let maxCharactersPerWord: Int
    /// The longest sequence, special tokens included.
    public private(set) var maxLength: Int
    public let normalizer: NormalizerOptions
    /// Tokens matched verbatim in the raw text (`[CLS]`, `[SEP]`, …), as a
    /// trie: each place of the text walks it once, as far as the text
    /// matches, so the cost grows with the longest token's length, not with
    /// how many tokens share a beginning.
    let addedTokens: ScalarTrie
    /// The vocabulary as a trie over its entries' scalars: WordPiece walks it
    /// from a piece's first scalar as far as the word matches, so finding the
    /// longest piece costs that piece's length, and builds no string.
    let pieces: ScalarTrie
    /// The node after the continuation prefix, where a piece that continues
    /// a word starts its walk; nil when no entry begins with the prefix.
    let continuation: Int32?

    public init(vocabulary: [String: Int32], unknown: Int32, classification: Int32, separator: Int32, padding: Int32,
                continuationPrefix: String = "##", maxCharactersPerWord: Int = 100, maxLength: Int = 512,
                normalizer: NormalizerOptions = NormalizerOptions(), addedTokens: [(String, Int32)] = []) throws {
        guard maxLength >= 2 else { throw QGEMMError(.invalidValue, "maxLength must be ≥ 2 ([CLS] and [SEP]), got \(maxLength)") }
        // The limits tokenizer.json's reader keeps (WordPiece walks the
        // vocabulary from every start of a word: its cost grows with the
        // square of the word's length).
        guard (1...1000).contains(maxCharactersPerWord) else {
            throw QGEMMError(.invalidValue, "maxCharactersPerWord must be in 1...1000, got \(maxCharactersPerWord)")
        }
        guard continuationPrefix.count <= 16 else {
            throw QGEMMError(.invalidValue, "continuationPrefix has \(continuationPrefix.count) characters, at most 16")
        }
        // Ids index the embedding table: none is negative.
        if let (token, id) = vocabulary.first(where: { $0.value < 0 }) ?? addedTokens.first(where: { $0.1 < 0 }) {
            throw QGEMMError(.invalidValue, "token \(token.debugDescription) has id \(id); ids must be ≥ 0")
        }
        for (name, id) in [("unknown", unknown), ("classification", classification), ("separator", separator), ("padding", padding)]
        where id < 0 {
            throw QGEMMError(.invalidValue, "\(name) is \(id); ids must be ≥ 0")
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
        self.addedTokens = ScalarTrie(addedTokens)
        self.pieces = ScalarTrie(vocabulary.lazy.map { ($0.key, $0.value) })
        self.continuation = pieces.node(after: continuationPrefix.unicodeScalars)
    }

    /// The same tokenizer with another longest sequence (as
    /// sentence-transformers' `max_seq_length` overrides `tokenizer.json`'s
    /// truncation); `maxLength` must be ≥ 2.
    public func truncating(at maxLength: Int) throws -> WordPieceTokenizer {
        guard maxLength >= 2 else { throw QGEMMError(.invalidValue, "maxLength must be ≥ 2 ([CLS] and [SEP]), got \(maxLength)") }
        var copy = self
        copy.maxLength = maxLength
        return copy
    }

    /// The ids of `text`: `[CLS]`, at most `maxLength − 2` content tokens, `[SEP]`.
    public func encode(_ text: String) -> [Int32] {
        var ids = [classification]
        ids += contentTokens(text, atLeast: maxLength - 2).prefix(maxLength - 2)
        ids.append(separator)
        return ids
    }

    /// The content tokens of `text`, without `[CLS]`/`[SEP]` or truncation;
    /// with `atLeast`, it may stop at the first word boundary after that many
    /// (so a long text costs what its kept tokens cost, not its length).
    func contentTokens(_ text: String, atLeast limit: Int = .max) -> [Int32] {
        let scalars = Array(text.unicodeScalars)
        var ids: [Int32] = []
        var segmentStart = 0, i = 0
        // Added tokens are matched scalar by scalar in the raw text, the
        // longest at each place, before any normalization. A segment of
        // ordinary text is tokenized when a token ends it, or early, at an
        // ASCII space, tab or line break, when it is long: the normalizer
        // keeps those as word boundaries whatever its options (unlike the
        // form feed or U+0085, which cleaning drops as control characters),
        // and they start no combining sequence, so the ids are the same.
        while i < scalars.count && ids.count < limit {
            if let (length, id) = addedTokens.longestMatch(scalars, at: i) {
                tokenize(scalars[segmentStart..<i], into: &ids, atLeast: limit)
                ids.append(id)
                i += length
                segmentStart = i
            } else {
                if i - segmentStart >= 4096 && Self.isBoundary(scalars[i]) {
                    tokenize(scalars[segmentStart..<i], into: &ids, atLeast: limit)
                    segmentStart = i
                }
                i += 1
            }
        }
        if ids.count < limit { tokenize(scalars[segmentStart..<i], into: &ids, atLeast: limit) }
        return ids
    }

    /// A space, tab, line feed or carriage return: a word boundary before and
    /// after normalization, with every option.
    static func isBoundary(_ s: Unicode.Scalar) -> Bool {
        s == " " || s == "\t" || s == "\n" || s == "\r"
    }

    /// Normalizes, splits into words and appends each word's pieces, stopping
    /// at a word boundary once `ids` holds `limit` tokens.
    func tokenize(_ text: ArraySlice<Unicode.Scalar>, into ids: inout [Int32], atLeast limit: Int = .max) {
        guard !text.isEmpty, ids.count < limit else { return }
        var word: [Unicode.Scalar] = []
        for s in BertCharacters.normalize(text, normalizer) {
            if ids.count >= limit { return }
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

    /// Greedy longest-match-first pieces of one word (after the first, each
    /// with the continuation prefix); the whole word is `[UNK]` when it is
    /// too long or some part of it matches nothing.
    func wordPiece(_ word: [Unicode.Scalar], into ids: inout [Int32]) {
        guard !word.isEmpty else { return }
        guard word.count <= maxCharactersPerWord else { ids.append(unknown); return }
        var found: [Int32] = []
        var start = 0
        while start < word.count {
            let node = start > 0 ? continuation : ScalarTrie.root
            guard let node, let (length, id) = pieces.longestMatch(word, at: start, from: node) else {
                ids.append(unknown)
                return
            }
            found.append(id)
            start += length
        }
        ids += found
    }

    /// Several texts, padded with `[PAD]` to the longest, with the attention
    /// mask (1 for a token, 0 for padding).
    public func encodeBatch(_ texts: [String]) -> TokenBatch {
        TokenBatch(sequences: texts.map(encode), padding: padding)
    }
}

/// Token ids of several sequences, padded to the longest, and their mask.
///
/// The padded forms, ``ids`` and ``attentionMask``, are made when they are
/// read: the encoder reads only ``sequences`` (it never computes a padded
/// position), and a million sentences padded to 128 tokens would be a
/// gigabyte of both.
public struct TokenBatch: Sendable, Equatable {
    /// Each sequence's ids, unpadded.
    public let sequences: [[Int32]]
    /// The longest sequence's length.
    public let paddedLength: Int
    /// The id that pads a sequence to ``paddedLength``.
    public let padding: Int32

    public init(sequences: [[Int32]], padding: Int32) {
        self.sequences = sequences
        self.padding = padding
        paddedLength = sequences.map(\.count).max() ?? 0
    }

    /// [count × paddedLength] ids, `padding` after each sequence (made on
    /// each read).
    public var ids: [Int32] {
        var ids: [Int32] = []
        ids.reserveCapacity(sequences.count * paddedLength)
        for s in sequences { ids += s + [Int32](repeating: padding, count: paddedLength - s.count) }
        return ids
    }

    /// [count × paddedLength]: 1 for a token, 0 for padding (made on each read).
    public var attentionMask: [Int32] {
        var mask: [Int32] = []
        mask.reserveCapacity(sequences.count * paddedLength)
        for s in sequences {
            mask += [Int32](repeating: 1, count: s.count) + [Int32](repeating: 0, count: paddedLength - s.count)
        }
        return mask
    }

    /// Tokens in all sequences, padding excluded.
    public var tokenCount: Int { sequences.reduce(0) { $0 + $1.count } }
}

/// Strings with ids as a trie over their exact Unicode scalars (no
/// canonical equivalence, as `tokenizers` compares bytes): the added tokens,
/// and the vocabulary. Its edges are one dictionary keyed by node and scalar
/// (a dictionary per node took several times the memory for a vocabulary of
/// 30,000 entries); a node's id is set where an entry ends.
struct ScalarTrie: Sendable {
    static let root: Int32 = 0
    private var edges: [UInt64: Int32] = [:]
    private var ids: [Int32] = [-1]

    /// The edge key: the node in the high bits, the scalar (at most 21 bits) in the low ones.
    private static func key(_ node: Int32, _ s: Unicode.Scalar) -> UInt64 { UInt64(UInt32(node)) << 21 | UInt64(s.value) }

    init(_ entries: some Sequence<(String, Int32)>) {
        for (text, id) in entries where !text.isEmpty {
            var node = Self.root
            for s in text.unicodeScalars {
                if let next = edges[Self.key(node, s)] {
                    node = next
                } else {
                    let next = Int32(ids.count)
                    ids.append(-1)
                    edges[Self.key(node, s)] = next
                    node = next
                }
            }
            // The first of two equal entries keeps its id, as a longest-first
            // stable order would (ids are ≥ 0: tokenizer.json's reader and the
            // added tokens' checks see to it).
            if ids[Int(node)] < 0 { ids[Int(node)] = id }
        }
    }

    /// The node reached from the root through `scalars`, or nil.
    func node(after scalars: some Sequence<Unicode.Scalar>) -> Int32? {
        var node = Self.root
        for s in scalars {
            guard let next = edges[Self.key(node, s)] else { return nil }
            node = next
        }
        return node
    }

    /// The longest entry that continues from `node` with `scalars[i...]`:
    /// how many of those scalars it takes, and its id.
    func longestMatch(_ scalars: [Unicode.Scalar], at i: Int, from node: Int32 = root) -> (length: Int, id: Int32)? {
        var node = node, j = i
        var best: (length: Int, id: Int32)? = nil
        while j < scalars.count, let next = edges[Self.key(node, scalars[j])] {
            node = next
            j += 1
            let id = ids[Int(next)]
            if id >= 0 { best = (j - i, id) }
        }
        return best
    }
}
