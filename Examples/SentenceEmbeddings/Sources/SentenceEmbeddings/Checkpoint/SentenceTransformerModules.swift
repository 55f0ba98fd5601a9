import Foundation
import QGEMM

/// What a sentence-transformers folder says comes after the transformer
/// (`modules.json`, and the pooling module's `config.json`), checked against
/// the one pipeline the encoder runs: mean pooling over the real tokens, then
/// L2 normalization. A folder that asks for anything else (CLS or max
/// pooling, a Dense layer, no Normalize) is refused with a ``QGEMMError``
/// (`.file`) naming the file and the key, instead of being embedded the
/// wrong way without a word. A folder without `modules.json` (a plain
/// Hugging Face BERT folder) says nothing, and is read as mean pooling and
/// normalization.
enum SentenceTransformerModules {
    /// The modules the encoder implements, in the order it runs them.
    static let pipeline = ["Transformer", "Pooling", "Normalize"]

    static func check(folder: URL, hiddenSize: Int) throws {
        let modulesURL = folder.appendingPathComponent("modules.json")
        guard FileManager.default.fileExists(atPath: modulesURL.path) else { return }
        let file = modulesURL.path
        func fail(_ why: String) -> QGEMMError { QGEMMError(.file, "\(file): \(why)") }
        let bytes = try JSONFile.read(modulesURL, limit: JSONFile.configBytes)
        let parsed: Any
        do { parsed = try JSONSerialization.jsonObject(with: Data(bytes)) } catch { throw fail("not JSON") }
        guard let modules = parsed as? [[String: Any]] else { throw fail("not a JSON array of modules") }
        var kinds: [String] = []
        var poolingPath: String?
        for (i, module) in modules.enumerated() {
            guard let type = module["type"] as? String else { throw fail("module \(i) has no 'type' string") }
            // "sentence_transformers.models.Pooling", or a longer path to the same class.
            guard type.hasPrefix("sentence_transformers."), let kind = type.split(separator: ".").last.map(String.init),
                  pipeline.contains(kind) else {
                throw fail("module \(i) is \(type); this encoder runs \(pipeline.joined(separator: ", ")) only")
            }
            kinds.append(kind)
            // An older export keeps the transformer in a subfolder (0_Transformer):
            // sentence-transformers would load that one, not the folder's own files.
            if kind == "Transformer", let path = module["path"] as? String, !path.isEmpty, path != "." && path != "./" {
                throw fail("the Transformer module's path is '\(path)'; this encoder reads the checkpoint folder's own files")
            }
            if kind == "Pooling" {
                guard let path = module["path"] as? String else { throw fail("the Pooling module has no 'path' string") }
                poolingPath = path
            }
        }
        guard kinds == pipeline else {
            throw fail("modules are \(kinds.joined(separator: ", ")); this encoder runs \(pipeline.joined(separator: ", ")) "
                       + "(mean pooling, then L2 normalization), in that order")
        }
        guard let poolingPath else { throw fail("no Pooling module") }
        try checkPooling(folder: folder, path: poolingPath, hiddenSize: hiddenSize, modulesFile: file)
        try checkNoDefaultPrompt(folder: folder)
    }

    /// `config_sentence_transformers.json` may name a prompt that
    /// `SentenceTransformer.encode` puts before every text by default; this
    /// encoder puts none, so a folder whose default prompt is not empty is
    /// refused (sentence-transformers' own "query" and "document" prompts
    /// are empty unless the file says otherwise).
    static func checkNoDefaultPrompt(folder: URL) throws {
        let url = folder.appendingPathComponent("config_sentence_transformers.json")
        guard FileManager.default.fileExists(atPath: url.path) else { return }
        let json = try JSONFile.object(try JSONFile.read(url, limit: JSONFile.configBytes), file: url.path)
        guard let name = json["default_prompt_name"], !(name is NSNull) else { return }
        let prompts = json["prompts"] as? [String: Any] ?? [:]
        let prompt = prompts[name as? String ?? ""] as? String
        guard prompt == "" || (prompt == nil && ["query", "document"].contains(name as? String ?? "")) else {
            throw QGEMMError(.file, "\(url.path): 'default_prompt_name' is \(name), a prompt \(prompt.map { "'\($0)'" } ?? "the file does not hold") "
                             + "that this encoder would not put before the text")
        }
    }

    /// The length sentence-transformers truncates a sentence-transformers
    /// folder's texts to (one with `modules.json`), which the encoder then
    /// truncates to too: `sentence_bert_config.json`'s `max_seq_length` (256
    /// for all-MiniLM-L6-v2, whose `tokenizer.json` says 128), or without it
    /// (or with it null) the least of `max_position_embeddings` and
    /// `tokenizer_config.json`'s `model_max_length`. nil for a folder without
    /// `modules.json`: `tokenizer.json`'s truncation then stands. A length
    /// outside 2...`maxPositions`, or `do_lower_case` true
    /// (sentence-transformers would lower-case the text before the
    /// tokenizer, special tokens in it included; this encoder does not), is
    /// refused.
    static func maxSequenceLength(folder: URL, maxPositions: Int) throws -> Int? {
        guard FileManager.default.fileExists(atPath: folder.appendingPathComponent("modules.json").path) else { return nil }
        let url = folder.appendingPathComponent("sentence_bert_config.json")
        if FileManager.default.fileExists(atPath: url.path) {
            func fail(_ why: String) -> QGEMMError { QGEMMError(.file, "\(url.path): \(why)") }
            let json = try JSONFile.object(try JSONFile.read(url, limit: JSONFile.configBytes), file: url.path)
            if let lower = json["do_lower_case"], !(lower is NSNull) {
                guard let lowerCases = JSONFile.boolean(lower) else { throw fail("'do_lower_case' is not true or false") }
                if lowerCases {
                    throw fail("'do_lower_case' is true: sentence-transformers lower-cases the text before the tokenizer, which this encoder does not")
                }
            }
            // sentence-transformers hands these to transformers when it loads the
            // model, its configuration and its tokenizer (a config_args of
            // {"num_hidden_layers": 2} runs two layers), which this encoder does not.
            for key in ["config_args", "model_args", "tokenizer_args"] {
                guard let value = json[key], !(value is NSNull) else { continue }
                guard let arguments = value as? [String: Any] else { throw fail("'\(key)' is not an object") }
                guard arguments.isEmpty else {
                    throw fail("'\(key)' sets \(arguments.keys.sorted().joined(separator: ", ")): sentence-transformers passes it to "
                               + "transformers when it loads the model, which this encoder does not")
                }
            }
            if let value = json["max_seq_length"], !(value is NSNull) {
                // Compared, not tested against a range: a range with its ends crossed would trap.
                guard let length = JSONFile.wholeNumber(value), length >= 2, length <= maxPositions else {
                    throw fail("'max_seq_length' is \(value), expected a whole number in 2...\(maxPositions) (max_position_embeddings)")
                }
                return length
            }
        }
        // The length sentence-transformers takes when the folder gives none.
        let tokenizerConfig = folder.appendingPathComponent("tokenizer_config.json")
        guard FileManager.default.fileExists(atPath: tokenizerConfig.path) else { return maxPositions }
        let json = try JSONFile.object(try JSONFile.read(tokenizerConfig, limit: JSONFile.configBytes), file: tokenizerConfig.path)
        // A missing or huge model_max_length (transformers writes 1e30 for "none") leaves the positions' bound;
        // older files name it max_len.
        guard let value = json["model_max_length"] ?? json["max_len"], !(value is NSNull) else { return maxPositions }
        guard let length = JSONFile.number(value)?.doubleValue, length.isFinite, length >= 2, length == length.rounded(.towardZero) else {
            throw QGEMMError(.file, "\(tokenizerConfig.path): 'model_max_length' is \(value), expected a whole number ≥ 2")
        }
        return length >= Double(maxPositions) ? maxPositions : Int(length)
    }

    /// The tokenizer classes of transformers that rebuild `tokenizer.json`'s
    /// normalizer from their `do_lower_case`, `strip_accents` and
    /// `tokenize_chinese_chars` (BertTokenizerFast's rule), with or without
    /// the `Fast` of their fast class.
    static let normalizerRebuildingTokenizers: Set<String> = [
        "BertTokenizer", "DistilBertTokenizer", "ElectraTokenizer", "MPNetTokenizer", "LayoutLMTokenizer",
        "FunnelTokenizer", "SqueezeBertTokenizer", "MobileBertTokenizer", "RetriBertTokenizer", "LxmertTokenizer",
    ]

    /// Refuses a folder whose tokenizer class would rebuild `tokenizer.json`'s
    /// normalizer differently, naming the key or the missing file. Such a
    /// class (``normalizerRebuildingTokenizers``) rebuilds it from
    /// `tokenizer_config.json`'s `do_lower_case` (by default true),
    /// `strip_accents` (by default null: as lower-casing) and
    /// `tokenize_chinese_chars` (by default true) where those differ from it,
    /// and takes those defaults where the folder has no such file. The class
    /// is `tokenizer_config.json`'s `tokenizer_class`, else `config.json`'s
    /// (`configTokenizerClass`), else BERT's (``BertConfig`` refuses any other
    /// `model_type`); another
    /// class (`PreTrainedTokenizerFast` reads `tokenizer.json` as it is) is
    /// left alone.
    static func checkTokenizerConfig(folder: URL, normalizer: NormalizerOptions, configTokenizerClass: String?) throws {
        let url = folder.appendingPathComponent("tokenizer_config.json")
        let present = FileManager.default.fileExists(atPath: url.path)
        let json = present ? try JSONFile.object(try JSONFile.read(url, limit: JSONFile.configBytes), file: url.path) : [:]
        var type = json["tokenizer_class"]
        if type == nil || type is NSNull { type = configTokenizerClass }
        if let type {
            guard let name = type as? String,
                  Self.normalizerRebuildingTokenizers.contains(name.hasSuffix("Fast") ? String(name.dropLast(4)) : name) else { return }
        }
        func fail(_ why: String) -> QGEMMError { QGEMMError(.file, "\(url.path): \(why)") }
        func flag(_ key: String) throws -> Bool? {
            guard let value = json[key], !(value is NSNull) else { return nil }
            guard let flag = JSONFile.boolean(value) else { throw fail("'\(key)' is \(value), not true or false") }
            return flag
        }
        let lowercase = try flag("do_lower_case"), chinese = try flag("tokenize_chinese_chars"), strip = try flag("strip_accents")
        for (key, given, rebuilt, inTokenizerJSON) in [
            ("do_lower_case", lowercase, lowercase ?? true, normalizer.lowercase),
            ("strip_accents", strip, strip ?? (lowercase ?? true), normalizer.stripAccents),
            ("tokenize_chinese_chars", chinese, chinese ?? true, normalizer.handleChineseCharacters),
        ] where rebuilt != inTokenizerJSON {
            let source = !present ? "missing, so transformers takes \(key) \(rebuilt)"
                : given == nil ? "'\(key)' is not set, so transformers takes \(rebuilt)" : "'\(key)' is \(rebuilt)"
            throw fail("\(source), where tokenizer.json's normalizer has \(inTokenizerJSON): transformers would rebuild that "
                       + "normalizer (this encoder follows tokenizer.json; a tokenizer_config.json with \"\(key)\": "
                       + "\(inTokenizerJSON) would match it)")
        }
    }

    /// The Pooling module's `config.json` must ask for mean pooling alone.
    static func checkPooling(folder: URL, path: String, hiddenSize: Int, modulesFile: String) throws {
        // Its folder is read inside the checkpoint's, never elsewhere.
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        guard !path.hasPrefix("/"), !parts.contains(where: { $0 == ".." || $0 == "." }), !parts.isEmpty else {
            throw QGEMMError(.file, "\(modulesFile): the Pooling module's path '\(path)' is not a folder inside the checkpoint")
        }
        let url = folder.appendingPathComponent(path).appendingPathComponent("config.json")
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw QGEMMError(.file, "\(url.path): missing (modules.json names a Pooling module in '\(path)')")
        }
        func fail(_ why: String) -> QGEMMError { QGEMMError(.file, "\(url.path): \(why)") }
        let json = try JSONFile.object(try JSONFile.read(url, limit: JSONFile.configBytes), file: url.path)
        func flag(_ key: String) throws -> Bool? {
            guard let value = json[key] else { return nil }
            guard let flag = JSONFile.boolean(value) else { throw fail("'\(key)' is not true or false") }
            return flag
        }
        // pooling_mode, where present, overrides every pooling_mode_* flag.
        if let mode = json["pooling_mode"], !(mode is NSNull) {
            guard (mode as? String)?.lowercased() == "mean" else {
                throw fail("'pooling_mode' is \(mode); it overrides the pooling_mode_* flags, and this encoder mean-pools")
            }
        } else {
            // sentence-transformers' Pooling mean-pools where the flag is left out.
            guard try flag("pooling_mode_mean_tokens") ?? true else {
                throw fail("'pooling_mode_mean_tokens' is not true; this encoder mean-pools")
            }
            for key in json.keys.sorted() where key.hasPrefix("pooling_mode_") && key != "pooling_mode_mean_tokens" {
                if try flag(key) == true { throw fail("'\(key)' is true; this encoder mean-pools and nothing else") }
            }
        }
        if let value = json["word_embedding_dimension"] {
            guard let width = JSONFile.wholeNumber(value), width == hiddenSize else {
                throw fail("'word_embedding_dimension' is \(value), not the hidden_size \(hiddenSize) of config.json")
            }
        }
    }
}
