import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The bytes of a file the loaders read. Only a regular file is read, and the
// refusal of anything else says so: Foundation's Data(contentsOf:) refuses a
// pipe or a device too, but as "You don't have permission", which sends the
// user to the file's mode bits. The file is opened first (non-blocking, so a
// pipe with no writer cannot stall the open) and its type taken from the open
// descriptor, so a file swapped between the check and the read is still the
// one checked. A size past the memory this process may use is refused before
// anything is allocated (an array that cannot be allocated would trap).

enum RegularFile {
    /// The whole of the regular file at `url`, or a ``QGEMMError`` (`.file`)
    /// that names it.
    static func bytes(_ url: URL) throws(QGEMMError) -> [UInt8] {
        let path = url.path
        // The system's words for error `code`, taken right after the call that set it.
        func failure(_ code: Int32) -> QGEMMError { QGEMMError(.file, "cannot read \(path): \(String(cString: strerror(code)))") }
        // Non-blocking, so that opening a pipe with no writer returns at once.
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)
        guard fd >= 0 else { throw failure(errno) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw failure(errno) }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw QGEMMError(.file, "cannot read \(path): not a regular file (a pipe, device or folder is not read)")
        }
        guard let size = Int(exactly: info.st_size), size >= 0 else { throw QGEMMError(.file, "cannot read \(path): size \(info.st_size)") }
        let memory = availableMemoryBytes()
        guard UInt64(size) <= memory else {
            throw QGEMMError(.file, "cannot read \(path): it is \(size) bytes, more than the \(memory) this process may use")
        }
        var bytes = [UInt8](repeating: 0, count: size)
        // Reads of at most 1 GiB (Darwin's read refuses a count past Int32.max),
        // retried when a signal interrupts them: the bytes read, or the error.
        func readSome(into base: UnsafeMutableRawPointer, _ count: Int) -> Result<Int, QGEMMError> {
            while true {
                let n = read(fd, base, Swift.min(count, 1 << 30))
                if n >= 0 { return .success(n) }
                let code = errno
                if code != EINTR { return .failure(failure(code)) }
            }
        }
        var done = 0
        while done < size {
            let n = try bytes.withUnsafeMutableBytes { readSome(into: $0.baseAddress! + done, size - done) }.get()
            if n == 0 { break }
            done += n
        }
        guard done == size else { throw QGEMMError(.file, "cannot read \(path): it shrank from \(size) to \(done) bytes while read") }
        // A file that reports a size but holds more (or one appended to while read) is refused, not cut short.
        var extra: UInt8 = 0
        let more = try readSome(into: &extra, 1).get()
        guard more == 0 else { throw QGEMMError(.file, "cannot read \(path): it grew while read") }
        return bytes
    }
}
