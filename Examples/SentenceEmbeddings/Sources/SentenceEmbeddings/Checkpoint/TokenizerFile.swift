import Foundation
import QGEMM

extension WordPieceTokenizer {
    /// Reads a Hugging Face `tokenizer.json` of a BERT WordPiece tokenizer:
    /// the `WordPiece` model and its vocabulary, the `BertNormalizer` options,
    /// the `BertPreTokenizer`, the special tokens, the truncation length and a
    /// post-processor that puts `[CLS]` before a sentence and `[SEP]` after it.
    /// Anything else (another model, normalizer or pre-tokenizer, a vocabulary
    /// without `[UNK]`, `[CLS]`, `[SEP]`, `[PAD]`, an id out of range,
    /// truncation from the left, no post-processor or another template, a
    /// post-processor whose special tokens have other ids or type ids than
    /// 0, no normalizer or pre-tokenizer at all (`tokenizers` would then
    /// neither normalize nor split the text), added tokens matched other than
    /// as they are written or whose ids are not the vocabulary's own) is
    /// refused with a ``QGEMMError`` (`.file`) naming the file and the key:
    /// each would change the ids `tokenizers` gives.
    /// Without truncation (`"truncation": null`, or none), texts are cut at
    /// `maxLengthWithoutTruncation` tokens: `tokenizers` would not cut them,
    /// and a BERT encoder takes no more than its position embeddings
    /// (``Checkpoint`` passes `max_position_embeddings`).
    public init(contentsOf url: URL, maxLengthWithoutTruncation: Int = 512) throws {
        try self.init(json: try JSONFile.read(url, limit: JSONFile.tokenizerBytes), file: url.path,
                      maxLengthWithoutTruncation: maxLengthWithoutTruncation)
    }

    /// Parses `tokenizer.json` bytes; `file` names the file in errors.
    public init(json bytes: [UInt8], file: String = "tokenizer.json", maxLengthWithoutTruncation: Int = 512) throws {
        func fail(_ why: String) -> QGEMMError { QGEMMError(.file, "\(file): \(why)") }
        let json = try JSONFile.object(bytes, file: file)
        guard let model = json["model"] as? [String: Any] else { throw fail("no 'model' object") }
        guard model["type"] as? String == "WordPiece" else { throw fail("model.type is \(model["type"] ?? "missing"), expected WordPiece") }
        guard let vocabulary = model["vocab"] as? [String: Any], !vocabulary.isEmpty else { throw fail("model.vocab is not a token → id object") }
        var vocab: [String: Int32] = [:]
        vocab.reserveCapacity(vocabulary.count)
        for (token, value) in vocabulary {
            guard let n = JSONFile.wholeNumber(value), let id = Int32(exactly: n), id >= 0 else {
                throw fail("model.vocab['\(token)'] is \(value), not an id ≥ 0")
            }
            vocab[token] = id
        }
        func token(_ name: String) throws -> Int32 {
            guard let id = vocab[name] else { throw fail("the vocabulary has no '\(name)'") }
            return id
        }
        let unk = model["unk_token"] as? String ?? "[UNK]"
        let prefix = model["continuing_subword_prefix"] as? String ?? "##"
        // Bounds far above what BERT tokenizers use (100 characters, "##"):
        // WordPiece walks the vocabulary from every start of a word, so its
        // time grows with the square of the word's length.
        guard prefix.count <= 16 else { throw fail("model.continuing_subword_prefix has \(prefix.count) characters, at most 16") }
        var maxChars = 100
        if let m = model["max_input_chars_per_word"] {
            guard let v = JSONFile.wholeNumber(m), v >= 1, v <= 1000 else {
                throw fail("model.max_input_chars_per_word is \(m), expected 1...1000")
            }
            maxChars = v
        }
        var options = NormalizerOptions()
        // Null or missing, tokenizers would not normalize at all ('Héllo'
        // whole, to [UNK]), where this one would lower-case and strip accents.
        guard let normalizer = json["normalizer"], !(normalizer is NSNull) else {
            throw fail("normalizer is \(json["normalizer"] == nil ? "missing" : "null"); this tokenizer applies a BertNormalizer")
        }
        guard let n = normalizer as? [String: Any], n["type"] as? String == "BertNormalizer" else {
            throw fail("normalizer is not a BertNormalizer")
        }
        func flag(_ key: String, _ fallback: Bool) throws -> Bool {
            guard let v = n[key], !(v is NSNull) else { return fallback }
            guard let b = v as? Bool else { throw fail("normalizer.\(key) is \(v), not true or false") }
            return b
        }
        options.cleanText = try flag("clean_text", true)
        options.handleChineseCharacters = try flag("handle_chinese_chars", true)
        options.lowercase = try flag("lowercase", true)
        options.stripAccents = try flag("strip_accents", options.lowercase)
        // Null or missing, tokenizers would not split the text into words.
        guard let pre = json["pre_tokenizer"], !(pre is NSNull) else {
            throw fail("pre_tokenizer is \(json["pre_tokenizer"] == nil ? "missing" : "null"); this tokenizer applies a BertPreTokenizer")
        }
        guard let p = pre as? [String: Any], p["type"] as? String == "BertPreTokenizer" else {
            throw fail("pre_tokenizer is not a BertPreTokenizer")
        }
        var maxLength = maxLengthWithoutTruncation
        if let truncation = json["truncation"], !(truncation is NSNull) {
            guard let t = truncation as? [String: Any], let m = t["max_length"], let v = JSONFile.wholeNumber(m), v >= 2 else {
                throw fail("truncation.max_length is not a whole number ≥ 2")
            }
            if let direction = t["direction"], !(direction is NSNull), direction as? String != "Right" {
                throw fail("truncation.direction is \(direction); this tokenizer keeps the first tokens (Right)")
            }
            maxLength = v
        }
        try Self.checkPostProcessor(json["post_processor"], vocabulary: vocab, fail)
        var added: [(String, Int32)] = []
        if let list = json["added_tokens"] {
            guard let entries = list as? [[String: Any]] else { throw fail("added_tokens is not a list of objects") }
            for e in entries {
                guard let content = e["content"] as? String, !content.isEmpty, let n = e["id"].flatMap(JSONFile.wholeNumber),
                      let id = Int32(exactly: n), id >= 0 else {
                    throw fail("an added_tokens entry has no content or id")
                }
                // `tokenizers` gives an added token its vocabulary id, whatever
                // the entry says (it only warns), and one the vocabulary lacks
                // an id past it, which the embeddings have no row for: the
                // entry must name the vocabulary's own.
                guard let own = vocab[content] else {
                    throw fail("added token '\(content)' is not in model.vocab; tokenizers would give it an id past the vocabulary's")
                }
                guard own == id else {
                    throw fail("added token '\(content)' has id \(id), but model.vocab gives it \(own), which tokenizers would use")
                }
                // Matched as written, alone: the flags that would strip the
                // spaces around it, match it only as a whole word, or match
                // the normalized text instead are not implemented.
                for flag in ["lstrip", "rstrip", "single_word", "normalized"] where (e[flag] as? Bool) == true {
                    throw fail("added token '\(content)' has \(flag): true, which this tokenizer does not implement")
                }
                added.append((content, id))
            }
        }
        try self.init(vocabulary: vocab, unknown: try token(unk), classification: try token("[CLS]"), separator: try token("[SEP]"),
                      padding: try token("[PAD]"), continuationPrefix: prefix, maxCharactersPerWord: maxChars,
                      maxLength: maxLength, normalizer: options, addedTokens: added)
    }

    /// The post-processor must put `[CLS]` before a sentence and `[SEP]`
    /// after it, as this tokenizer does: a `BertProcessing`, or a
    /// `TemplateProcessing` whose single-sentence template is exactly that.
    /// Without one (missing or null), `tokenizers` adds neither.
    /// Its special tokens must carry the vocabulary's ids (the encoder looks
    /// `[CLS]` and `[SEP]` up there) and type id 0 (it adds token-type row 0).
    static func checkPostProcessor(_ value: Any?, vocabulary: [String: Int32], _ fail: (String) -> QGEMMError) throws {
        guard let p = value as? [String: Any] else {
            throw fail("post_processor is \(value.map { "\($0)" } ?? "missing"); this tokenizer adds [CLS] and [SEP], "
                       + "as a BertProcessing or TemplateProcessing post-processor does")
        }
        switch p["type"] as? String {
        case "BertProcessing":
            let cls = p["cls"] as? [Any], sep = p["sep"] as? [Any]
            guard cls?.first as? String == "[CLS]", sep?.first as? String == "[SEP]" else {
                throw fail("post_processor's cls and sep are \(cls?.first ?? "missing") and \(sep?.first ?? "missing"), expected [CLS] and [SEP]")
            }
            for (name, pair) in [("[CLS]", cls), ("[SEP]", sep)] {
                guard pair?.count == 2, let n = pair.flatMap({ JSONFile.wholeNumber($0[1]) }), Int32(exactly: n) == vocabulary[name] else {
                    throw fail("post_processor gives \(name) the id \(pair.map { "\($0.dropFirst().first ?? "none")" } ?? "none"), "
                               + "not its model.vocab id \(vocabulary[name].map(String.init) ?? "none")")
                }
            }
        case "TemplateProcessing":
            let single = p["single"] as? [[String: Any]] ?? []
            let parts = single.map { part -> String in
                if let s = part["SpecialToken"] as? [String: Any] { return s["id"] as? String ?? "?" }
                if let q = part["Sequence"] as? [String: Any] { return "$" + (q["id"] as? String ?? "?") }
                return "?"
            }
            guard parts == ["[CLS]", "$A", "[SEP]"] else {
                throw fail("post_processor's single template is \(parts.joined(separator: " ")), expected [CLS] $A [SEP]")
            }
            for part in single {
                let piece = (part["SpecialToken"] ?? part["Sequence"]) as? [String: Any]
                if let t = piece?["type_id"], JSONFile.wholeNumber(t) != 0 {
                    throw fail("post_processor's single template gives type_id \(t); the encoder adds token type 0")
                }
            }
            let specials = p["special_tokens"] as? [String: Any] ?? [:]
            for name in ["[CLS]", "[SEP]"] {
                guard let entry = specials[name] else { continue }
                let ids = (entry as? [String: Any])?["ids"] as? [Any]
                guard ids?.count == 1, let n = ids.flatMap({ JSONFile.wholeNumber($0[0]) }), Int32(exactly: n) == vocabulary[name] else {
                    throw fail("post_processor.special_tokens gives \(name) the ids \(ids.map { "\($0)" } ?? "none"), "
                               + "not its model.vocab id \(vocabulary[name].map(String.init) ?? "none")")
                }
            }
        default:
            throw fail("post_processor is a \(p["type"] ?? "missing type"); expected BertProcessing or TemplateProcessing")
        }
    }
}
