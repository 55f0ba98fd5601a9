import Foundation
import SentenceEmbeddings
import Testing

/// The WordPiece tokenizer gives Hugging Face `tokenizers`' ids (recorded in
/// Fixtures/tokenizer-ids.json by scripts/encoder-check --write-fixtures) for
/// the evaluation sentences and a list of adversarial strings: accents, CJK,
/// Hangul, emoji, control and zero-width characters, punctuation runs,
/// special tokens in the text, over-long words, the empty string, truncation.
@Suite("WordPiece tokenizer")
struct TokenizerTests {
    struct Fixture: Decodable {
        struct Case: Decodable { let text: String; let ids: [Int32] }
        let cases: [Case]
    }

    @Test func idsEqualTheReferenceTokenizer() throws {
        let checkpoint = try TestModel.checkpoint.get()
        let fixture = try JSONDecoder().decode(Fixture.self, from: try TestModel.fixture("tokenizer-ids.json"))
        #expect(fixture.cases.count >= 190)
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

    @Test func batchPadsToTheLongestWithAMask() throws {
        let tokenizer = try TestModel.checkpoint.get().tokenizer
        let batch = tokenizer.encodeBatch(["a b c d", "a"])
        #expect(batch.paddedLength == 6)
        #expect(batch.attentionMask == [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0])
        #expect(Array(batch.ids[9...]) == [tokenizer.padding, tokenizer.padding, tokenizer.padding])
        #expect(batch.tokenCount == 9)
    }
}
