import Foundation
import QGEMM

/// `layers.json` in a folder of saved layers: for each layer, a fingerprint
/// of its file's bytes and one of the checkpoint layer it was made from
/// (its Float weights and bias). 4-bit layers need it: rounding to 16 values,
/// with clipped scales and GPTQ-style rounding, bounds no weight's distance
/// from the checkpoint's, so the file cannot be checked against the
/// checkpoint as an int8 one is (half a step per weight); the fingerprints
/// tell a damaged file, another layer's, one of another checkpoint or one
/// left from an earlier save instead. Int8 layers are checked against it
/// too where it is there (folders saved before it existed have none).
///
/// The fingerprint is 64-bit FNV-1a over the bytes (the Float values' bits
/// in memory order, little-endian): it finds accidents, not forgeries.
struct SavedLayersManifest: Equatable {
    struct Entry: Equatable {
        /// The fingerprint of the layer's `.safetensors` file.
        var file: String
        /// The fingerprint of the checkpoint layer's weights and bias.
        var checkpoint: String
    }

    static let fileName = "layers.json"
    static let format = "swift-qgemm SentenceEmbeddings saved layers"
    /// The most bytes a manifest is read from (36 entries take about 4 KB).
    static let maxBytes = 1 << 20

    var layers: [String: Entry]

    static func fingerprint(_ bytes: UnsafeRawBufferPointer, _ start: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 {
        var h = start
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }

    static func text(_ h: UInt64) -> String {
        let hex = String(h, radix: 16)
        return "fnv1a64:" + String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// The fingerprint of a file's bytes.
    static func fileFingerprint(_ data: Data) -> String {
        text(data.withUnsafeBytes { fingerprint($0) })
    }

    /// The fingerprint of a checkpoint layer: its weights, then its bias.
    static func checkpointFingerprint(_ part: BertWeights.Linear) -> String {
        let h = part.weight.withUnsafeBytes { fingerprint($0) }
        return text(part.bias.withUnsafeBytes { fingerprint($0, h) })
    }

    func json() throws -> Data {
        let entries = layers.mapValues { ["file": $0.file, "checkpoint": $0.checkpoint] }
        return try JSONSerialization.data(withJSONObject: ["format": Self.format, "version": 1, "layers": entries] as [String: Any],
                                          options: [.prettyPrinted, .sortedKeys])
    }

    /// The folder's manifest, nil when it has none; a damaged one is a
    /// ``QGEMMError`` naming it.
    static func read(folder: URL) throws -> SavedLayersManifest? {
        let url = folder.appendingPathComponent(fileName)
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder) else { return nil }
        let json = try JSONFile.object(try JSONFile.read(url, limit: maxBytes), file: url.path)
        guard json["format"] as? String == format, JSONFile.wholeNumber(json["version"] as Any) == 1,
              let layers = json["layers"] as? [String: Any] else {
            throw QGEMMError(.file, "\(url.path): not a manifest of saved layers (format \"\(format)\", version 1, layers)")
        }
        var entries: [String: Entry] = [:]
        for (name, value) in layers {
            guard let entry = value as? [String: Any], let file = entry["file"] as? String, let checkpoint = entry["checkpoint"] as? String,
                  entry.count == 2 else {
                throw QGEMMError(.file, "\(url.path): layer \(name): an entry is {\"file\": …, \"checkpoint\": …}")
            }
            entries[name] = Entry(file: file, checkpoint: checkpoint)
        }
        return SavedLayersManifest(layers: entries)
    }
}
