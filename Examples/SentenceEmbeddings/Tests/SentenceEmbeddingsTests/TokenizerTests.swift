import Foundation
import QGEMM
import SentenceEmbeddings
import Testing

/// The WordPiece tokenizer gives Hugging Face `tokenizers`' ids (recorded in
/// Fixtures/tokenizer-ids.json by scripts/encoder-check --write-fixtures) for
/// the evaluation sentences and a list of adversarial strings: accents, CJK,
/// Hangul, emoji, control and zero-width characters, punctuation runs,
/// special tokens in the text, over-long words, the empty string, truncation,
/// and long texts whose kept tokens reach past the places where the Swift
/// tokenizer cuts a long stretch of text at whitespace.
@Suite("WordPiece tokenizer")
struct TokenizerTests {
    struct Fixture: Decodable {
        struct Case: Decodable { let text: String; let ids: [Int32] }
        let cases: [Case]
    }

    @Test func idsEqualTheReferenceTokenizer() throws {
        let checkpoint = try TestModel.checkpoint.get()
        let fixture = try JSONDecoder().decode(Fixture.self, from: try TestModel.fixture("tokenizer-ids.json"))
        #expect(fixture.cases.count >= 200)
        var mismatches = 0
        for c in fixture.cases {
            let ids = checkpoint.tokenizer.encode(c.text)
            if ids != c.ids {
                mismatches += 1
                Issue.record("\(c.text.debugDescription): \(ids) ≠ reference \(c.ids)")
            }
        }
        #expect(mismatches == 0)
    }

    /// A long text is tokenized only as far as its kept tokens (it stops at
    /// the first word boundary past `maxLength − 2`): the ids equal those of
    /// a tokenizer with room for every token, truncated afterwards, as the
    /// reference does. (Both cut long stretches of text at whitespace alike;
    /// the reference fixture checks those cuts.)
    @Test func longTextsStopEarlyWithTheSameIds() throws {
        let model = try TestModel.checkpoint.get().tokenizer
        let specials = ["[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]"].compactMap { t in model.vocabulary[t].map { (t, $0) } }
        func tokenizer(maxLength: Int) throws -> WordPieceTokenizer {
            try WordPieceTokenizer(vocabulary: model.vocabulary, unknown: model.unknown, classification: model.classification,
                                   separator: model.separator, padding: model.padding, continuationPrefix: model.continuationPrefix,
                                   maxCharactersPerWord: model.maxCharactersPerWord, maxLength: maxLength,
                                   normalizer: model.normalizer, addedTokens: specials)
        }
        let whole = try tokenizer(maxLength: 10_000_000)
        let pieces = ["Café au lait, s'il vous plaît!", "[SEP] mid-text [MASK]", "東京タワー 🙂 naïve ", "unbelievably\tlong\u{00A0}words ",
                      String(repeating: "x", count: 5000), String(repeating: "ab ", count: 3000), "Ω̃ ΣΑΣ ", "\u{2028}\u{0301}e "]
        // Words of over 100 characters are one [UNK] each, so the kept tokens
        // reach far into the text, past the places where it is cut early.
        let longWords = (0..<300).map { i in String(repeating: "q", count: 101 + i % 60) + (i % 7 == 0 ? "!" : "") }
        let fixed = [longWords.joined(separator: " "), longWords.joined(separator: "\n") + " [SEP] tail",
                     longWords.joined(separator: "\u{3000}")]
        var rng = SystemRandomNumberGenerator()
        for maxLength in [2, 3, 16, 128, 512] {
            let cut = try tokenizer(maxLength: maxLength)
            for drawn in 0..<(12 + fixed.count) {
                let text = drawn < fixed.count ? fixed[drawn]
                    : (0..<Int.random(in: 1...40, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()
                let full = whole.encode(text)
                let expected = [full[0]] + full.dropFirst().dropLast().prefix(maxLength - 2) + [full[full.count - 1]]
                #expect(cut.encode(text) == expected, "maxLength \(maxLength): \(text.prefix(80).debugDescription)…")
            }
        }
    }

    /// Added tokens match in the raw text, the longest at each place, left to
    /// right; the first of two equal tokens keeps its id.
    @Test func addedTokensMatchTheLongestFirst() throws {
        var vocabulary: [String: Int32] = ["[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "[PAD]": 3]
        for (i, c) in "abcxyz".enumerated() {
            vocabulary[String(c)] = Int32(10 + i)
            vocabulary["##" + String(c)] = Int32(20 + i)
        }
        let tokenizer = try WordPieceTokenizer(vocabulary: vocabulary, unknown: 0, classification: 1, separator: 2, padding: 3,
                                               addedTokens: [("ab", 100), ("abc", 101), ("b", 102), ("ab", 103), ("xyzzy", 104)])
        let a: Int32 = 10, x: Int32 = 13, y: Int32 = 14, z: Int32 = 15, yCont: Int32 = 24, zCont: Int32 = 25
        let cases: [(String, [Int32])] = [
            ("abcab b", [101, 100, 102]),    // abc, ab, b
            ("aabc", [a, 101]),              // a (a word), abc
            ("xyzz", [x, yCont, zCont, zCont]),  // xyzzy does not fit: an ordinary word
            ("xyzzyab", [104, 100]),
            ("x y", [x, y]),
            ("", []),
            ("zab", [z, 100]),
        ]
        for (text, content) in cases {
            #expect(tokenizer.encode(text) == [1] + content + [2], "\(text.debugDescription)")
        }
    }

    /// Pieces match vocabulary entries scalar for scalar, as `tokenizers`
    /// compares bytes, though Swift's `String` calls canonically equivalent
    /// strings equal. The expected ids are what Hugging Face `tokenizers`
    /// (0.23.3) gives with this vocabulary, `BertNormalizer` without lower
    /// case or accent stripping (so no decomposition), `BertPreTokenizer`
    /// and `[CLS]`/`[SEP]`.
    @Test func piecesMatchTheirScalarsNotCanonicalEquivalents() throws {
        let vocabulary: [String: Int32] = [
            "[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "[PAD]": 3, "\u{E9}": 4, "e": 5, "##\u{301}": 6, "caf": 7, "##\u{E9}": 8,
            "##e": 9, "\u{AC00}": 10, "\u{1100}": 11, "##\u{1161}": 12, "\u{C5}": 13, "A": 14, "##\u{30A}": 15, "n": 16,
            "##a\u{308}": 17, "##i": 19, "##v": 20,
        ]
        var cased = NormalizerOptions()
        cased.lowercase = false
        cased.stripAccents = false
        let tokenizer = try WordPieceTokenizer(vocabulary: vocabulary, unknown: 0, classification: 1, separator: 2, padding: 3,
                                               normalizer: cased)
        let cases: [(String, [Int32])] = [
            ("\u{E9}", [4]), ("e\u{301}", [5, 6]),                       // é precomposed; e and U+0301
            ("caf\u{E9}", [7, 8]), ("cafe\u{301}", [7, 9, 6]),
            ("\u{AC00}", [10]), ("\u{1100}\u{1161}", [11, 12]),            // a Hangul syllable; its jamo
            ("\u{212B}", [0]), ("\u{C5}", [13]), ("A\u{30A}", [14, 15]),    // Ångström sign, Å, A and a ring
            ("na\u{308}ive", [16, 17, 19, 20, 9]), ("n\u{E4}ive", [0]),
            ("e\u{301} \u{E9}", [5, 6, 4]),
        ]
        for (text, content) in cases {
            #expect(tokenizer.encode(text) == [1] + content + [2], "\(text.unicodeScalars.map { String($0.value, radix: 16) })")
        }
        #expect(throws: QGEMMError.self) {
            try WordPieceTokenizer(vocabulary: ["[UNK]": 0, "x": -1], unknown: 0, classification: 0, separator: 0, padding: 0)
        }
        #expect(throws: QGEMMError.self) {
            try WordPieceTokenizer(vocabulary: ["[UNK]": 0], unknown: 0, classification: 0, separator: 0, padding: 0,
                                   addedTokens: [("[X]", -5)])
        }
        #expect(throws: QGEMMError.self) {
            try WordPieceTokenizer(vocabulary: ["[UNK]": 0], unknown: 0, classification: -1, separator: 0, padding: 0)
        }
    }

    @Test func batchPadsToTheLongestWithAMask() throws {
        let tokenizer = try TestModel.checkpoint.get().tokenizer
        let batch = tokenizer.encodeBatch(["a b c d", "a"])
        #expect(batch.paddedLength == 6)
        #expect(batch.attentionMask == [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0])
        #expect(Array(batch.ids[9...]) == [tokenizer.padding, tokenizer.padding, tokenizer.padding])
        #expect(batch.tokenCount == 9)
    }
}
