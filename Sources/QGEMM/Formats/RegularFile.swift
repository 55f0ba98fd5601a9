import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The files the safetensors and .npy readers read and their writers write.
// Only a regular file is read, and the refusal of anything else says so:
// Foundation's Data(contentsOf:) refuses a pipe or a device too, but as "You
// don't have permission", which sends the user to the file's mode bits. The
// file is opened first (non-blocking, so a pipe with no writer cannot stall
// the open) and its type taken from the open descriptor, so a file swapped
// between the check and the read is still the one checked. A size past the
// memory this process may use is refused before anything is allocated (an
// array that cannot be allocated would trap). Reads go by byte range, so a
// reader that keeps only parts of a file (the tensors, not the file) never
// holds the file twice; and because the parts are read at different times, a
// file whose size or modification time moved in between is refused.

/// An open regular file, read by byte ranges.
package final class RegularFile {
    let path: String
    /// The size when opened; ``checkUnchanged()`` says whether it still is.
    let size: Int
    private let fd: Int32
    /// The modification time when opened (seconds, nanoseconds).
    private let modified: (Int, Int)

    /// Opens the regular file at `url` for reading, or throws a ``QGEMMError``
    /// (`.file`) that names it.
    init(reading url: URL) throws(QGEMMError) {
        let path = url.path
        // URL's path drops a trailing "/": "file.npy/" would read file.npy.
        guard !url.hasDirectoryPath else {
            throw QGEMMError(.file, "cannot read \(path): not a regular file (a pipe, device or folder is not read)")
        }
        // Non-blocking, so that opening a pipe with no writer returns at once.
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)
        guard fd >= 0 else { throw Self.failure(path, "cannot read", errno) }
        let info: stat
        do { info = try Self.checkOpened(fd, path) } catch {
            close(fd)
            throw error
        }
        self.path = path
        self.size = Int(info.st_size)
        self.fd = fd
        self.modified = Self.modificationTime(info)
    }

    /// The open file's status, once it is known to be a regular file of a
    /// size this process can hold.
    private static func checkOpened(_ fd: Int32, _ path: String) throws(QGEMMError) -> stat {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw failure(path, "cannot read", errno) }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw QGEMMError(.file, "cannot read \(path): not a regular file (a pipe, device or folder is not read)")
        }
        guard let size = Int(exactly: info.st_size), size >= 0 else {
            throw QGEMMError(.file, "cannot read \(path): size \(info.st_size)")
        }
        let memory = availableMemoryBytes()
        guard UInt64(size) <= memory else {
            throw QGEMMError(.file, "cannot read \(path): it is \(size) bytes, more than the \(memory) this process may use")
        }
        return info
    }

    /// Parses the file at `url` through `parse`, given its size and a reader
    /// of its byte ranges, then refuses a file that changed while read. A
    /// parse that fails reports a change first (the damage it saw may be the
    /// change); its own errors go through `place`, the file's read errors,
    /// which name the file already, do not.
    static func parse<T>(_ url: URL, place: (QGEMMError) -> QGEMMError = { $0 },
                         _ parse: (_ size: Int, _ read: (Range<Int>) throws -> [UInt8]) throws -> T) throws -> T {
        let file = try RegularFile(reading: url)
        var readFailure: QGEMMError?
        let value: T
        do {
            value = try parse(file.size) { range in
                do throws(QGEMMError) { return try file.read(range) } catch {
                    readFailure = error
                    throw error
                }
            }
        } catch {
            try file.checkUnchanged()
            if let readFailure { throw readFailure }
            throw (error as? QGEMMError).map(place) ?? error
        }
        try file.checkUnchanged()
        return value
    }

    deinit { close(fd) }

    /// The bytes of `range`, which lies inside ``size``; a file that has
    /// shrunk under the read is refused.
    func read(_ range: Range<Int>) throws(QGEMMError) -> [UInt8] {
        guard range.lowerBound >= 0, range.upperBound <= size else {
            throw QGEMMError(.file, "cannot read \(path): bytes \(range) are past its \(size)")
        }
        var bytes = [UInt8](repeating: 0, count: range.count)
        var done = 0
        while done < range.count {
            let n = try bytes.withUnsafeMutableBytes { readSome(into: $0.baseAddress! + done, range.count - done, at: range.lowerBound + done) }.get()
            if n == 0 { break }
            done += n
        }
        guard done == range.count else {
            throw QGEMMError(.file, "cannot read \(path): it shrank from \(size) to \(range.lowerBound + done) bytes while read")
        }
        return bytes
    }

    /// Refuses a file that is not as it was when opened: its size or
    /// modification time moved (it was rewritten, cut or appended to while
    /// read), or it holds bytes past the size it reports.
    func checkUnchanged() throws(QGEMMError) {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw Self.failure(path, "cannot read", errno) }
        guard Int(exactly: info.st_size) == size, Self.modificationTime(info) == modified else {
            throw QGEMMError(.file, "cannot read \(path): it changed while read (size \(size) → \(info.st_size) bytes, or its modification time)")
        }
        var extra: UInt8 = 0
        let more = try readSome(into: &extra, 1, at: size).get()
        guard more == 0 else { throw QGEMMError(.file, "cannot read \(path): it grew while read") }
    }

    /// One pread of at most 1 GiB (Darwin refuses a count past Int32.max) at
    /// `offset`, retried when a signal interrupts it: the bytes read, or the
    /// error.
    private func readSome(into base: UnsafeMutableRawPointer, _ count: Int, at offset: Int) -> Result<Int, QGEMMError> {
        while true {
            let n = pread(fd, base, Swift.min(count, 1 << 30), off_t(offset))
            if n >= 0 { return .success(n) }
            let code = errno
            if code != EINTR { return .failure(Self.failure(path, "cannot read", code)) }
        }
    }

    private static func modificationTime(_ info: stat) -> (Int, Int) {
        #if canImport(Darwin)
        (Int(info.st_mtimespec.tv_sec), Int(info.st_mtimespec.tv_nsec))
        #else
        (Int(info.st_mtim.tv_sec), Int(info.st_mtim.tv_nsec))
        #endif
    }

    /// Writes `parts` one after another to the file at `url`, straight from
    /// the caller's buffers: nothing is joined into one buffer first.
    ///
    /// Where `url` names a regular file of one name, or nothing, the bytes go
    /// to a new file beside it (`.qgemm-<hex>.partial`, given the old file's
    /// owner, group and mode), which is then renamed over it: a write cut
    /// short (a full disk, an interrupt, a killed process) leaves the old file
    /// whole, or no file, never one cut short (at worst the partial file
    /// beside it). The rest is emptied and written in place: a link (written
    /// through), a file of several names (all of them see the new contents),
    /// a pipe or device, a file this process may not write (so refused), and
    /// a file whose folder takes no new file, whose owner and group a new file
    /// cannot be given (another user's, unless root), or that cannot be
    /// renamed over (a file mounted on its own). A pipe with no reader is
    /// refused rather than waited for; one with a reader is written as a file
    /// is.
    package static func save(_ parts: [[UInt8]], to url: URL) throws(QGEMMError) {
        let path = url.path
        // URL's path drops a trailing "/": "out/" would be written as a file "out".
        guard !url.hasDirectoryPath else { throw QGEMMError(.file, "cannot write \(path): a folder's path, not a file's") }
        if try saveByReplacing(parts, to: url) { return }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0o666)
        guard fd >= 0 else {
            let code = errno
            // ENXIO, "No such device or address", is how a pipe with no reader answers.
            if code == ENXIO { throw QGEMMError(.file, "cannot write \(path): a pipe with no reader") }
            throw failure(path, "cannot write", code)
        }
        do { try writeAll(parts, to: fd, path) } catch {
            close(fd)
            throw error
        }
        // close reports what a network file system or a full quota deferred.
        guard close(fd) == 0 else { throw failure(path, "cannot write", errno) }
    }

    /// ``save(_:to:)``'s replacing write. False, with nothing done and nothing
    /// left, where the path is neither a regular file of one name nor absent,
    /// where the file may not be written (the write in place then says so),
    /// and where the new file cannot take the old one's place: no file may be
    /// made in the folder (`EACCES`, `EPERM`, a read-only file system, a name
    /// too long, no free name in 8 tries), the old owner and group cannot be
    /// given, or the rename is refused (a file mounted on its own, another
    /// user's in a sticky folder). True once the new file is in place. Throws
    /// where the partial file cannot be made for another reason (no room: the
    /// old file is then left as it is, not written in place) or the write,
    /// `fchmod`, `close` or rename fails otherwise; the partial file is
    /// removed and the old file left as it was.
    private static func saveByReplacing(_ parts: [[UInt8]], to url: URL) throws(QGEMMError) -> Bool {
        let path = url.path
        var old = stat()
        let exists = lstat(path, &old) == 0
        if exists && (old.st_mode & S_IFMT != S_IFREG || old.st_nlink != 1 || access(path, W_OK) != 0) { return false }
        if !exists && errno != ENOENT { return false }
        // The folder and name from the path itself; the partial file's name is
        // short whatever the file's (a long name plus a suffix could pass NAME_MAX).
        let slash = path.lastIndex(of: "/")
        let folder = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        var generator = SystemRandomNumberGenerator()
        var partial = "", fd: Int32 = -1
        for _ in 0..<8 {
            partial = folder + "/.qgemm-" + String(UInt64.random(in: 0...UInt64.max, using: &generator), radix: 16) + ".partial"
            // Made new (O_EXCL: not through a link): owner-only while an old
            // file's mode is not yet given, else the mode a new file gets.
            fd = open(partial, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, exists ? 0o600 : 0o666)
            if fd >= 0 || errno != EEXIST { break }
        }
        guard fd >= 0 else {
            let code = errno
            if [EACCES, EPERM, EROFS, ENAMETOOLONG, EEXIST].contains(code) { return false }
            throw failure(path, "cannot write", code)
        }
        func abandon() { close(fd); unlink(partial) }
        if exists && fchown(fd, old.st_uid, old.st_gid) != 0 && (old.st_uid != geteuid() || old.st_gid != getegid()) {
            abandon()
            return false
        }
        do {
            try writeAll(parts, to: fd, path)
        } catch {
            abandon()
            throw error
        }
        // After the write: a write by a process other than root clears the setuid and setgid bits.
        if exists && fchmod(fd, old.st_mode & 0o7777) != 0 {
            let code = errno
            abandon()
            throw failure(path, "cannot write", code)
        }
        guard close(fd) == 0 else {
            let code = errno
            unlink(partial)
            throw failure(path, "cannot write", code)
        }
        guard rename(partial, path) == 0 else {
            let code = errno
            unlink(partial)
            if [EBUSY, EXDEV, EPERM, EACCES].contains(code) { return false }
            throw failure(path, "cannot write", code)
        }
        return true
    }

    /// Writes `parts` to the open `fd`, retrying interrupted and short writes.
    private static func writeAll(_ parts: [[UInt8]], to fd: Int32, _ path: String) throws(QGEMMError) {
        // Opened without waiting; written with waiting (a pipe's reader may be slow).
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0, fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == 0 else { throw failure(path, "cannot write", errno) }
        for part in parts {
            var done = 0
            while done < part.count {
                let n = part.withUnsafeBytes { write(fd, $0.baseAddress! + done, Swift.min(part.count - done, 1 << 30)) }
                if n < 0 {
                    let code = errno
                    if code == EINTR { continue }
                    throw failure(path, "cannot write", code)
                }
                guard n > 0 else { throw QGEMMError(.file, "cannot write \(path): the system wrote nothing") }
                done += n
            }
        }
    }

    /// The system's words for error `code`, taken right after the call that set it.
    private static func failure(_ path: String, _ what: String, _ code: Int32) -> QGEMMError {
        QGEMMError(.file, "\(what) \(path): \(String(cString: strerror(code)))")
    }
}
