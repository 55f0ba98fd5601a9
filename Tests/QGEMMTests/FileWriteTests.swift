import Foundation
import Testing
@testable import QGEMM

/// The writers (`.npy`, safetensors, the tool's outputs) replace a regular
/// file in one rename, so a write cut short never leaves it cut short; what
/// cannot be replaced so is written in place.
@Suite("File writes")
struct FileWriteTests {
    func folder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("writes-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    func contents(_ url: URL) throws -> [UInt8] { [UInt8](try Data(contentsOf: url)) }

    /// A regular file is replaced, not emptied and written: a reader holding
    /// the old file still reads all of it (written in place, it would read
    /// the new bytes or a file cut short), the new file keeps the old one's
    /// mode, and no partial file is left beside it.
    @Test func aRegularFileIsReplacedWhole() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("y.npy")
        let old = [UInt8](repeating: 7, count: 10_000)
        try RegularFile.save([old], to: url)
        #expect(chmod(url.path, 0o640) == 0)
        let reader = open(url.path, O_RDONLY)
        #expect(reader >= 0)
        defer { close(reader) }
        try RegularFile.save([[1, 2, 3], [4]], to: url)
        #expect(try contents(url) == [1, 2, 3, 4])
        var held = [UInt8](repeating: 0, count: old.count + 1)
        #expect(pread(reader, &held, held.count, 0) == old.count)
        #expect(held.prefix(old.count).elementsEqual(old), "the old file's bytes changed under its reader")
        var info = stat()
        #expect(stat(url.path, &info) == 0 && info.st_mode & 0o777 == 0o640)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["y.npy"])
        // Another user's file keeps its owner (only root can give one here; CI runs as root).
        if geteuid() == 0 {
            #expect(chown(url.path, 1, 1) == 0)
            try RegularFile.save([[5]], to: url)
            #expect(stat(url.path, &info) == 0 && info.st_uid == 1 && info.st_gid == 1 && info.st_mode & 0o777 == 0o640)
            #expect(try contents(url) == [5])
        }
    }

    /// What cannot be replaced in one rename is written in place: a link is
    /// written through (the file it names gets the bytes, the link stays a
    /// link), a file of two names is written under both, and a path under a
    /// file is refused with the system's reason, nothing made.
    @Test func whatCannotBeReplacedIsWrittenInPlace() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let target = dir.appendingPathComponent("target.bin"), alias = dir.appendingPathComponent("link.bin")
        try RegularFile.save([[9, 9]], to: target)
        try FileManager.default.createSymbolicLink(at: alias, withDestinationURL: target)
        try RegularFile.save([[5, 6, 7]], to: alias)
        #expect(try contents(target) == [5, 6, 7])
        #expect((try FileManager.default.attributesOfItem(atPath: alias.path)[.type] as? FileAttributeType) == .typeSymbolicLink)
        let second = dir.appendingPathComponent("second.bin")
        #expect(link(target.path, second.path) == 0)
        try RegularFile.save([[8]], to: second)
        #expect(try contents(target) == [8] && contents(second) == [8])
        do {
            try RegularFile.save([[1]], to: target.appendingPathComponent("under"))
            Issue.record("wrote under a file")
        } catch {
            #expect(error.message.contains("cannot write") && error.message.contains("Not a directory"), "\(error.message)")
        }
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: dir.path)) == ["target.bin", "link.bin", "second.bin"])
    }
}
