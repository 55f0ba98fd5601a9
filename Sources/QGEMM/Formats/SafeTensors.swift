import Foundation

/// A safetensors file (the format of Hugging Face and MLX): an 8-byte
/// little-endian header length, a JSON header naming each tensor's dtype, shape
/// and byte range, an optional `__metadata__` object of string values, then the
/// raw little-endian tensor data. This reader checks everything it is given:
/// the header length against the file, the JSON, every dtype and shape, and that
/// the tensors' byte ranges exactly tile the data that follows (no gap, no
/// overlap, nothing past the end), as the reference implementation requires.
public struct SafeTensorsFile: Sendable, Equatable {
    /// The element types this package reads and writes.
    public enum DType: String, Sendable, CaseIterable {
        /// Signed 8-bit integer (`"I8"`).
        case int8 = "I8"
        /// Unsigned 8-bit integer (`"U8"`).
        case uint8 = "U8"
        /// Signed 32-bit integer (`"I32"`).
        case int32 = "I32"
        /// Signed 64-bit integer (`"I64"`).
        case int64 = "I64"
        /// IEEE binary16 (`"F16"`).
        case float16 = "F16"
        /// IEEE binary32 (`"F32"`).
        case float32 = "F32"

        /// Bytes per element.
        public var itemSize: Int {
            switch self {
            case .int8, .uint8: 1
            case .float16: 2
            case .int32, .float32: 4
            case .int64: 8
            }
        }
    }

    /// One tensor: its dtype, shape and little-endian bytes.
    public struct Tensor: Sendable, Equatable {
        /// The element type.
        public let dtype: DType
        /// The dimensions, outermost first (C order); empty for a scalar.
        public let shape: [Int]
        /// The raw little-endian element bytes, C order.
        public let bytes: [UInt8]

        /// - Throws: ``QGEMMError/Code/invalidShape`` when the bytes do not hold the shape.
        public init(dtype: DType, shape: [Int], bytes: [UInt8]) throws {
            let count = try SafeTensorsFile.elementCount(shape)
            guard count.multipliedReportingOverflow(by: dtype.itemSize) == (bytes.count, false) else {
                throw QGEMMError(.invalidShape, "shape \(shape) of \(dtype.rawValue) needs \(count) elements, \(bytes.count) bytes given")
            }
            self.dtype = dtype
            self.shape = shape
            self.bytes = bytes
        }

        /// An int8 tensor of `shape` holding `values` in C order.
        ///
        /// - Throws: ``QGEMMError/Code/invalidShape`` when `values.count` is not
        ///   the product of `shape`, or `shape` has a negative dimension.
        public init(int8 values: [Int8], shape: [Int]) throws {
            try self.init(dtype: .int8, shape: shape, bytes: values.map { UInt8(bitPattern: $0) })
        }

        /// An int32 tensor of `shape` holding `values` in C order.
        ///
        /// - Throws: ``QGEMMError/Code/invalidShape`` when `values.count` is not
        ///   the product of `shape`, or `shape` has a negative dimension.
        public init(int32 values: [Int32], shape: [Int]) throws {
            try self.init(dtype: .int32, shape: shape, bytes: values.flatMap { withUnsafeBytes(of: $0.littleEndian, Array.init) })
        }

        /// A float32 tensor of `shape` holding `values` in C order.
        ///
        /// - Throws: ``QGEMMError/Code/invalidShape`` when `values.count` is not
        ///   the product of `shape`, or `shape` has a negative dimension.
        public init(float32 values: [Float], shape: [Int]) throws {
            try self.init(dtype: .float32, shape: shape,
                          bytes: values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) })
        }

        /// The elements of an int8 tensor; nil for any other dtype.
        public var int8Values: [Int8]? { dtype == .int8 ? bytes.map { Int8(bitPattern: $0) } : nil }

        /// The elements of an int32 tensor; nil for any other dtype.
        public var int32Values: [Int32]? {
            guard dtype == .int32 else { return nil }
            return stride(from: 0, to: bytes.count, by: 4).map { i in
                Int32(bitPattern: UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24)
            }
        }

        /// The elements of a float16 tensor as Float (exactly: every half value
        /// is a Float); nil for any other dtype.
        public var float16Values: [Float]? {
            guard dtype == .float16 else { return nil }
            return stride(from: 0, to: bytes.count, by: 2).map { i in NPYArray.float(half: UInt16(bytes[i]) | UInt16(bytes[i + 1]) << 8) }
        }

        /// The elements of a float32 tensor; nil for any other dtype (no conversion).
        public var float32Values: [Float]? {
            guard dtype == .float32 else { return nil }
            return stride(from: 0, to: bytes.count, by: 4).map { i in
                Float(bitPattern: UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24)
            }
        }
    }

    /// The tensors, by name.
    public var tensors: [String: Tensor]
    /// The `__metadata__` object (string keys and values).
    public var metadata: [String: String]

    /// A file holding `tensors` and the `__metadata__` entries `metadata`
    /// (written only when not empty).
    public init(tensors: [String: Tensor], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// Headers larger than this are refused (the reference reader's limit).
    public static let maxHeaderBytes = 100_000_000

    static func elementCount(_ shape: [Int]) throws -> Int {
        var count = 1
        for d in shape {
            guard d >= 0 else { throw QGEMMError(.invalidShape, "shape \(shape) has a negative dimension") }
            // The reader takes dimensions below 2^62 (a zero elsewhere lets a larger one hold no bytes).
            guard d < 1 << 62 else { throw QGEMMError(.invalidShape, "shape \(shape) has a dimension of 2^62 or more, which no file here holds") }
            let (c, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow else { throw QGEMMError(.invalidShape, "shape \(shape) has too many elements") }
            count = c
        }
        return count
    }

    // MARK: Reading

    /// Parses and checks a whole file.
    ///
    /// - Throws: ``QGEMMError/Code/file`` naming the first problem.
    public init(bytes: [UInt8]) throws {
        try self.init(fileBytes: bytes.count) { Array(bytes[$0]) }
    }

    /// Reads a file and parses and checks it as ``init(bytes:)`` does. Only
    /// the header and then each tensor's bytes are read, so the file is never
    /// held whole beside its tensors.
    ///
    /// - Throws: ``QGEMMError/Code/file`` when the file cannot be read, is
    ///   not a regular file (a pipe or a device is not read), is larger than
    ///   the memory this process may use, changes while read (its size or
    ///   modification time moves), or is not a valid safetensors file; the
    ///   message begins with the file's path.
    public init(contentsOf url: URL) throws {
        self = try RegularFile.parse(url, place: { $0.placed(url.path) }) { try SafeTensorsFile(fileBytes: $0, read: $1) }
    }

    /// Parses and checks a file of `fileBytes` bytes whose byte ranges `read`
    /// gives: the header first, then, once all of it has been checked, each
    /// tensor's bytes (kept as the tensor's, not copied again).
    private init(fileBytes: Int, read: (Range<Int>) throws -> [UInt8]) throws {
        func fail(_ why: String) -> QGEMMError { QGEMMError(.file, "not a valid safetensors file: \(why)") }
        guard fileBytes >= 8 else { throw fail("\(fileBytes) bytes, shorter than the 8-byte header length") }
        let lengthField = try read(0..<8)
        var length: UInt64 = 0
        for i in 0..<8 { length |= UInt64(lengthField[i]) << (8 * UInt64(i)) }
        guard length <= UInt64(Self.maxHeaderBytes) else { throw fail("header length \(length) exceeds \(Self.maxHeaderBytes)") }
        guard length >= 2, Int(length) <= fileBytes - 8 else {
            throw fail("header length \(length) does not fit the file's \(fileBytes - 8) bytes after it")
        }
        let headerEnd = 8 + Int(length)
        let headerBytes = try read(8..<headerEnd)
        guard headerBytes[0] == UInt8(ascii: "{") else { throw fail("the header does not start with '{'") }
        // UTF-8, as the format says, with no NUL (JSON text has none, not even
        // in a string): JSONSerialization would guess UTF-16 or UTF-32 from
        // the zero bytes and read such a header too.
        // (Decoding replaces every ill-formed sequence, so the bytes survive a
        // round trip exactly when they are UTF-8.)
        guard !headerBytes.contains(0), Array(String(decoding: headerBytes, as: UTF8.self).utf8) == headerBytes else {
            throw fail("the header is not UTF-8 JSON text")
        }
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(headerBytes), options: [])
        } catch {
            throw fail("the header is not JSON")
        }
        guard let header = json as? [String: Any] else { throw fail("the header is not a JSON object") }
        var metadata: [String: String] = [:]
        var ranges: [(name: String, begin: Int, end: Int, dtype: DType, shape: [Int])] = []
        for (name, value) in header {
            if name == "__metadata__" {
                guard let object = value as? [String: Any] else { throw fail("__metadata__ is not an object") }
                for (k, v) in object {
                    guard let s = v as? String else { throw fail("__metadata__ value '\(k)' is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard let info = value as? [String: Any] else { throw fail("tensor '\(name)' is not an object") }
            guard let dtypeName = info["dtype"] as? String else { throw fail("tensor '\(name)' has no dtype string") }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw fail("tensor '\(name)' has dtype '\(dtypeName)'; supported: \(DType.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard let shapeValues = info["shape"] as? [Any] else { throw fail("tensor '\(name)' has no shape list") }
            let shape = try shapeValues.map { v -> Int in
                guard let i = Self.exactInt(v), i >= 0 else { throw fail("tensor '\(name)' has shape \(shapeValues)") }
                return i
            }
            guard let offsets = info["data_offsets"] as? [Any], offsets.count == 2,
                  let begin = Self.exactInt(offsets[0]), let end = Self.exactInt(offsets[1]), begin >= 0, begin <= end else {
                throw fail("tensor '\(name)' has no valid data_offsets [begin, end]")
            }
            let count: Int
            do { count = try Self.elementCount(shape) } catch { throw fail("tensor '\(name)' has shape \(shape), too many elements") }
            let (size, overflow) = count.multipliedReportingOverflow(by: dtype.itemSize)
            guard !overflow, end - begin == size else {
                throw fail("tensor '\(name)' of \(dtype.rawValue) \(shape) spans \(end - begin) bytes, its shape needs \(overflow ? "more" : "\(size)")")
            }
            ranges.append((name, begin, end, dtype, shape))
        }
        // The byte ranges must tile the data exactly.
        let data = fileBytes - headerEnd
        var next = 0
        for r in ranges.sorted(by: { ($0.begin, $0.end) < ($1.begin, $1.end) }) {
            guard r.begin == next else {
                throw fail(r.begin < next ? "tensor '\(r.name)' overlaps another" : "a gap of \(r.begin - next) bytes before tensor '\(r.name)'")
            }
            next = r.end
        }
        guard next == data else {
            throw fail(next > data ? "the tensors need \(next) data bytes, the file has \(data)" : "\(data - next) bytes after the last tensor")
        }
        var tensors: [String: Tensor] = [:]
        for r in ranges {
            tensors[r.name] = try Tensor(dtype: r.dtype, shape: r.shape, bytes: try read((headerEnd + r.begin)..<(headerEnd + r.end)))
        }
        self.init(tensors: tensors, metadata: metadata)
    }


    /// An integer JSON number, exactly (JSONSerialization gives NSNumber; a
    /// fraction or a value past Int is not one).
    private static func exactInt(_ v: Any) -> Int? {
        guard let n = v as? NSNumber else { return nil }
        switch String(cString: n.objCType) {
        case "c":
            // true/false arrive as NSNumber too; their type code is 'c' (char).
            return nil
        case "f", "d":
            // A number written with a fraction or an exponent (2.0, 1e3): a
            // whole one below 2^53, where a double holds every integer as
            // written.
            let d = n.doubleValue
            guard d.isFinite, d == d.rounded(.towardZero), abs(d) < 0x1p53 else { return nil }
            return Int(d)
        case "Q", "L", "I", "S", "C":
            // Unsigned: 18446744073709551615 arrives as UInt64, whose Int64 view is −1.
            let u = n.uint64Value
            return u < 1 << 62 ? Int(u) : nil
        default:
            // An integer as written, exactly (doubleValue rounds past 2^53).
            let i = n.int64Value
            return i.magnitude < 1 << 62 ? Int(i) : nil
        }
    }

    // MARK: Writing

    /// The file's bytes: tensors in name order, the header padded with spaces
    /// to a multiple of 8 bytes (as the reference writer does).
    ///
    /// - Throws: ``QGEMMError/Code/invalidArgument`` for a tensor named
    ///   `__metadata__`, the name the format keeps for the metadata object,
    ///   or a header longer than ``maxHeaderBytes`` (which no reader here takes).
    public func serialized() throws -> [UInt8] {
        let parts = try parts()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(parts.reduce(0) { $0 + $1.count })
        for part in parts { bytes += part }
        return bytes
    }

    /// Writes ``serialized()`` to `url`, the header and then each tensor
    /// straight from its own bytes, so the file is never built whole in
    /// memory beside the tensors.
    ///
    /// - Throws: ``QGEMMError/Code/invalidArgument`` as ``serialized()``
    ///   does; ``QGEMMError/Code/file`` when the file cannot be written. A regular file already at `url` is replaced in one rename
    ///   by a file written beside it, so a write that fails part way (a full disk, a killed
    ///   process) leaves the old file whole; a link is written through, and a file of several
    ///   names, or one that cannot be replaced so, is written in place (then a failed write
    ///   leaves it cut short, which every reader here refuses).
    public func write(to url: URL) throws {
        try RegularFile.save(try parts(), to: url)
    }

    /// The file in pieces: the header length and header, then the tensors'
    /// own bytes in name order (not copied).
    private func parts() throws -> [[UInt8]] {
        // The format keeps the name for the metadata object: a tensor of that
        // name would replace it in the header, and the file would not read back.
        guard tensors["__metadata__"] == nil else {
            throw QGEMMError(.invalidArgument, "a tensor cannot be named __metadata__: the format keeps the name for the metadata object")
        }
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        let sorted = tensors.sorted { $0.key < $1.key }
        for (name, t) in sorted {
            header[name] = ["dtype": t.dtype.rawValue, "shape": t.shape, "data_offsets": [offset, offset + t.bytes.count]] as [String: Any]
            offset += t.bytes.count
        }
        var json = [UInt8](try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
        // The reader's limit, so that every file written reads back.
        guard json.count <= Self.maxHeaderBytes else {
            throw QGEMMError(.invalidArgument, "the header would take \(json.count) bytes, more than the \(Self.maxHeaderBytes) a safetensors file here may have")
        }
        return [withUnsafeBytes(of: UInt64(json.count).littleEndian, Array.init) + json] + sorted.map(\.value.bytes)
    }
}
