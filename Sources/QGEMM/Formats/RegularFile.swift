import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The bytes of a file the loaders read. Only a regular file is read: a pipe
// would block the caller for ever and a device such as /dev/zero (a damaged
// folder may link a weight file to it) would be read until memory runs out.
// The file is opened first and its type taken from the open descriptor, so a
// file swapped between the check and the read is still the one checked.

enum RegularFile {
    /// The whole of the regular file at `url`, or a ``QGEMMError`` (`.file`)
    /// that names it.
    static func bytes(_ url: URL) throws(QGEMMError) -> [UInt8] {
        let path = url.path
        // Non-blocking, so that opening a pipe with no writer returns at once.
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw QGEMMError(.file, "cannot read \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw QGEMMError(.file, "cannot read \(path): \(String(cString: strerror(errno)))") }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw QGEMMError(.file, "cannot read \(path): not a regular file (a pipe, device or folder is not read)")
        }
        guard let size = Int(exactly: info.st_size), size >= 0 else { throw QGEMMError(.file, "cannot read \(path): size \(info.st_size)") }
        var bytes = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, size - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw QGEMMError(.file, "cannot read \(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            done += n
        }
        guard done == size else { throw QGEMMError(.file, "cannot read \(path): it shrank from \(size) to \(done) bytes while read") }
        return bytes
    }
}
