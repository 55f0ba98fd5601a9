import Foundation
import QGEMM

/// Reading the checkpoint's JSON files (`config.json`, `tokenizer.json`):
/// the bytes, the top-level object and whole numbers, with errors that name
/// the file.
enum JSONFile {
    /// The most bytes `config.json` (a few hundred in BERT checkpoints) and
    /// `tokenizer.json` (under a megabyte for a 30,522-token vocabulary, a
    /// few megabytes for the largest) are read from: a larger file (a sparse
    /// one of 50 GB, say) is refused before it is read, not loaded whole.
    static let configBytes = 1 << 20, tokenizerBytes = 64 << 20

    /// The file's bytes, or a ``QGEMMError`` (`.file`) naming it. Only a
    /// regular file of at most `limit` bytes is read: a pipe would block for
    /// ever and a device (a link to /dev/zero, say) would be read until memory
    /// runs out.
    static func read(_ url: URL, limit: Int) throws -> [UInt8] {
        let attributes = try? FileManager.default.attributesOfItem(atPath: url.resolvingSymlinksInPath().path)
        if let type = attributes?[.type] as? FileAttributeType, type != .typeRegular { throw QGEMMError(.file, "\(url.path): not a regular file") }
        if let size = (attributes?[.size] as? NSNumber)?.intValue, size > limit {
            throw QGEMMError(.file, "\(url.path): \(size) bytes, more than the \(limit) such a file may have")
        }
        do { return [UInt8](try Data(contentsOf: url)) } catch {
            throw QGEMMError(.file, "\(url.path): cannot read: \(error.localizedDescription)")
        }
    }

    /// The top-level JSON object of `bytes`; `file` names the file in errors.
    static func object(_ bytes: [UInt8], file: String) throws -> [String: Any] {
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: Data(bytes)) } catch {
            throw QGEMMError(.file, "\(file): not JSON")
        }
        guard let json = object as? [String: Any] else { throw QGEMMError(.file, "\(file): not a JSON object") }
        return json
    }

    /// A JSON number; nil for anything else (true and false arrive as
    /// NSNumber too: their type code is 'c').
    static func number(_ value: Any) -> NSNumber? {
        guard let n = value as? NSNumber, String(cString: n.objCType) != "c" else { return nil }
        return n
    }

    /// A JSON true or false; nil for anything else (a number included).
    static func boolean(_ value: Any) -> Bool? {
        guard let n = value as? NSNumber, String(cString: n.objCType) == "c" else { return nil }
        return n.boolValue
    }

    /// A JSON number that is a whole number Int holds; nil for anything else.
    static func wholeNumber(_ value: Any) -> Int? {
        guard let d = number(value)?.doubleValue else { return nil }
        guard d.isFinite, d == d.rounded(.towardZero), abs(d) < 0x1p62 else { return nil }
        return Int(d)
    }
}
