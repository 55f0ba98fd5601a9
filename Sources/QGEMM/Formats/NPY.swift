import Foundation

/// A NumPy `.npy` array: reader and writer for the dtypes QGEMM uses.
///
/// Reads format versions 1.0, 2.0 and 3.0, C order, little-endian (or
/// byte-order-free single bytes), dtypes int8, uint8, int32, int64 (NumPy's
/// default integer), float16, float32 and float64. The typed reads convert
/// int64 to a narrower integer and float16/float64 to Float, and refuse a value
/// that does not fit (an int64 outside the type, a float64 beyond Float's
/// range). Writes version 1.0 (2.0 when the header needs it). Everything else
/// is refused with a ``QGEMMError`` (code ``QGEMMError/Code/file``) that names
/// the problem; parsing never reads past the bytes it was given.
///
/// ```swift
/// let a = try NPYArray(int8: [1, -2, 3, -4], shape: [2, 2])
/// try a.write(to: URL(fileURLWithPath: "x.npy"))
/// let b = try NPYArray(contentsOf: URL(fileURLWithPath: "x.npy"))
/// let values = try b.int8Values()   // [1, -2, 3, -4]
/// ```
public struct NPYArray: Sendable, Equatable {
    /// An element type NPYArray reads; the raw value is NumPy's dtype name.
    public enum DType: String, Sendable, CaseIterable {
        /// Signed 8-bit integer (`|i1`).
        case int8
        /// Unsigned 8-bit integer (`|u1`).
        case uint8
        /// Little-endian signed 32-bit integer (`<i4`).
        case int32
        /// Little-endian signed 64-bit integer (`<i8`), NumPy's default integer;
        /// read only, narrowed by the typed reads.
        case int64
        /// Little-endian IEEE binary16 (`<f2`); read only, converted to Float.
        case float16
        /// Little-endian IEEE binary32 (`<f4`).
        case float32
        /// Little-endian IEEE binary64 (`<f8`); converted to Float by ``NPYArray/floatValues()``.
        case float64

        /// Bytes per element.
        public var itemSize: Int {
            switch self {
            case .int8, .uint8: 1
            case .float16: 2
            case .int32, .float32: 4
            case .int64, .float64: 8
            }
        }

        var descr: String {
            switch self {
            case .int8: "|i1"
            case .uint8: "|u1"
            case .int32: "<i4"
            case .int64: "<i8"
            case .float16: "<f2"
            case .float32: "<f4"
            case .float64: "<f8"
            }
        }
    }

    /// Largest header accepted, in bytes (NumPy's own safety limit).
    public static let maxHeaderBytes = 10_000

    /// The element type.
    public let dtype: DType
    /// The dimensions, outermost first (C order); empty for a 0-d array.
    public let shape: [Int]
    /// The raw little-endian element bytes, C order.
    public let bytes: [UInt8]

    /// Number of elements (the product of `shape`; 1 for a 0-d array).
    public var count: Int { shape.reduce(1, *) }

    // MARK: Making arrays

    /// An int8 array of `shape` holding `values` in C order.
    ///
    /// - Throws: ``QGEMMError`` with code ``QGEMMError/Code/invalidShape`` when
    ///   `values.count` is not the product of `shape`, or ``QGEMMError/Code/file``
    ///   for a negative dimension or a byte count that overflows.
    public init(int8 values: [Int8], shape: [Int]) throws {
        try self.init(dtype: .int8, shape: shape, bytes: values.map { UInt8(bitPattern: $0) })
    }

    /// A uint8 array of `shape` holding `values` in C order.
    ///
    /// - Throws: ``QGEMMError`` with code ``QGEMMError/Code/invalidShape`` when
    ///   `values.count` is not the product of `shape`, or ``QGEMMError/Code/file``
    ///   for a negative dimension or a byte count that overflows.
    public init(uint8 values: [UInt8], shape: [Int]) throws {
        try self.init(dtype: .uint8, shape: shape, bytes: values)
    }

    /// An int32 array of `shape` holding `values` in C order.
    ///
    /// - Throws: ``QGEMMError`` with code ``QGEMMError/Code/invalidShape`` when
    ///   `values.count` is not the product of `shape`, or ``QGEMMError/Code/file``
    ///   for a negative dimension or a byte count that overflows.
    public init(int32 values: [Int32], shape: [Int]) throws {
        try self.init(dtype: .int32, shape: shape, bytes: values.flatMap { v in withUnsafeBytes(of: v.littleEndian, Array.init) })
    }

    /// A float32 array of `shape` holding `values` in C order.
    ///
    /// - Throws: ``QGEMMError`` with code ``QGEMMError/Code/invalidShape`` when
    ///   `values.count` is not the product of `shape`, or ``QGEMMError/Code/file``
    ///   for a negative dimension or a byte count that overflows.
    public init(float32 values: [Float], shape: [Int]) throws {
        try self.init(dtype: .float32, shape: shape,
                      bytes: values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian, Array.init) })
    }

    /// A float64 array of `shape` holding `values` in C order.
    ///
    /// - Throws: ``QGEMMError`` with code ``QGEMMError/Code/invalidShape`` when
    ///   `values.count` is not the product of `shape`, or ``QGEMMError/Code/file``
    ///   for a negative dimension or a byte count that overflows.
    public init(float64 values: [Double], shape: [Int]) throws {
        try self.init(dtype: .float64, shape: shape,
                      bytes: values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian, Array.init) })
    }

    private init(dtype: DType, shape: [Int], bytes: [UInt8]) throws {
        // What the reader takes, so that every array written reads back.
        guard shape.count <= 32 else { throw QGEMMError(.invalidShape, "shape \(shape) has \(shape.count) dimensions; .npy files here hold at most 32") }
        let count = try Self.checkedCount(shape, itemSize: dtype.itemSize) / dtype.itemSize
        guard count * dtype.itemSize == bytes.count else {
            throw QGEMMError(.invalidShape, "shape \(shape) holds \(count) elements, \(bytes.count / dtype.itemSize) given")
        }
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
    }

    // MARK: Reading

    /// Reads and parses a `.npy` file. Only the header and then the data
    /// are read, so the file is never held whole beside the array.
    ///
    /// - Throws: ``QGEMMError/Code/file`` when the file cannot be read, is not
    ///   a regular file (a pipe or a device is not read), is larger than the
    ///   memory this process may use, changes while read (its size or
    ///   modification time moves), or is not a valid `.npy` file.
    public init(contentsOf url: URL) throws {
        // The parser's errors get the file's path.
        self = try RegularFile.parse(url, place: { $0.placed(url.path) }) { try NPYArray(fileBytes: $0, read: $1) }
    }

    /// Parses the bytes of a `.npy` file.
    public init(parsing file: [UInt8]) throws {
        try self.init(fileBytes: file.count) { Array(file[$0]) }
    }

    /// Parses a file of `fileBytes` bytes whose byte ranges `read` gives: the
    /// prefix, the header, then, once both have been checked, the data (kept
    /// as the array's, not copied again).
    private init(fileBytes fileSize: Int, read: (Range<Int>) throws -> [UInt8]) throws {
        func fail(_ why: String) -> QGEMMError { QGEMMError(.file, "not a valid .npy file: \(why)") }
        let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59] // \x93NUMPY
        // The magic, the version and the longest header length field.
        let prefix = try read(0..<min(fileSize, 12))
        // The magic, or as much of it as a short file holds.
        guard !prefix.isEmpty, magic.starts(with: prefix.prefix(6)) else { throw fail("missing the \\x93NUMPY magic") }
        guard fileSize >= 10 else { throw fail("file is truncated: \(fileSize) bytes, shorter than the 10 that start a .npy file") }
        let major = prefix[6], minor = prefix[7]
        let headerStart: Int, headerLength: Int
        switch major {
        case 1:
            headerStart = 10
            headerLength = Int(prefix[8]) | Int(prefix[9]) << 8
        case 2, 3:
            guard fileSize >= 12 else { throw fail("file ends inside the header length") }
            headerStart = 12
            headerLength = Int(prefix[8]) | Int(prefix[9]) << 8 | Int(prefix[10]) << 16 | Int(prefix[11]) << 24
        default:
            throw fail("format version \(major).\(minor) is not supported (1.0, 2.0, 3.0 are)")
        }
        guard minor == 0 else { throw fail("format version \(major).\(minor) is not supported (1.0, 2.0, 3.0 are)") }
        guard headerLength <= Self.maxHeaderBytes else {
            throw fail("header of \(headerLength) bytes exceeds the limit of \(Self.maxHeaderBytes)")
        }
        guard fileSize - headerStart >= headerLength else {
            throw fail("file is truncated: the header needs \(headerLength) bytes, \(fileSize - headerStart) remain")
        }
        let headerBytes = try read(headerStart..<(headerStart + headerLength))
        guard let header = String(bytes: headerBytes, encoding: major == 3 ? .utf8 : .ascii) else {
            throw fail("header is not \(major == 3 ? "UTF-8" : "ASCII") text")
        }
        let dict = try NPYHeader.parse(header)
        guard let descr = dict.descr else { throw fail("header has no 'descr'") }
        guard let fortran = dict.fortranOrder else { throw fail("header has no 'fortran_order'") }
        guard let shape = dict.shape else { throw fail("header has no 'shape'") }
        guard !fortran else { throw QGEMMError(.file, "Fortran-order arrays are not supported; save with np.ascontiguousarray") }
        let dtype = try Self.dtype(from: descr)
        let byteCount = try Self.checkedCount(shape, itemSize: dtype.itemSize)
        let dataStart = headerStart + headerLength
        let available = fileSize - dataStart
        guard available >= byteCount else {
            throw fail("file is truncated: shape \(shape) of \(dtype.rawValue) needs \(byteCount) data bytes, \(available) present")
        }
        guard available == byteCount else {
            throw fail("\(available - byteCount) unexpected bytes after the data of shape \(shape)")
        }
        self.dtype = dtype
        self.shape = shape
        self.bytes = try read(dataStart..<(dataStart + byteCount))
    }

    private static func dtype(from descr: String) throws -> DType {
        guard descr.count == 3, let order = descr.first else { throw QGEMMError(.file, "unsupported dtype '\(descr)'") }
        let kind = String(descr.dropFirst())
        if order == ">" && !(kind == "i1" || kind == "u1") {
            throw QGEMMError(.file, "big-endian dtype '\(descr)' is not supported; use little-endian ('<')")
        }
        guard order == "<" || order == "|" || order == "=" || order == ">" else {
            throw QGEMMError(.file, "unsupported dtype '\(descr)'")
        }
        switch kind {
        case "i1": return .int8
        case "u1": return .uint8
        case "i4": return .int32
        case "i8": return .int64
        case "f2": return .float16
        case "f4": return .float32
        case "f8": return .float64
        default:
            throw QGEMMError(.file, "unsupported dtype '\(descr)'; supported: int8, uint8, int32, int64, float16, float32, float64")
        }
    }

    /// Bytes of `shape` elements of `itemSize`, or an error if it overflows.
    private static func checkedCount(_ shape: [Int], itemSize: Int) throws -> Int {
        var total = itemSize
        for d in shape {
            guard d >= 0 else { throw QGEMMError(.file, "negative dimension in shape \(shape)") }
            let (p, o) = total.multipliedReportingOverflow(by: d)
            guard !o else { throw QGEMMError(.file, "shape \(shape) is too large: its byte count overflows") }
            total = p
        }
        return total
    }

    // MARK: Typed access

    /// Checks the rank and returns the shape.
    public func requireRank(_ rank: Int, name: String) throws -> [Int] {
        guard shape.count == rank else {
            throw QGEMMError(.invalidShape, "\(name) must have rank \(rank), got shape \(shape)")
        }
        return shape
    }

    /// int8 values, or int64 values that all fit in Int8. Values that would
    /// not fit in memory beside the file's bytes are refused (`.invalidShape`),
    /// as by every conversion that copies them.
    public func int8Values() throws -> [Int8] {
        if dtype == .int64 { return try narrowed(Int8.self) }
        try require(.int8)
        try checkConversionFits(Int8.self)
        return bytes.map { Int8(bitPattern: $0) }
    }

    /// uint8 values, or int64 values that all fit in UInt8.
    public func uint8Values() throws -> [UInt8] {
        if dtype == .int64 { return try narrowed(UInt8.self) }
        try require(.uint8)
        return bytes
    }

    /// int32 values, or int64 values that all fit in Int32 (refused, as
    /// ``int8Values()`` says, where they would not fit in memory).
    public func int32Values() throws -> [Int32] {
        if dtype == .int64 { return try narrowed(Int32.self) }
        try require(.int32)
        try checkConversionFits(Int32.self)
        return stride(from: 0, to: bytes.count, by: 4).map { i in
            Int32(bitPattern: UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24)
        }
    }

    /// The int64 elements, converted to T; a value outside T is refused.
    private func narrowed<T: FixedWidthInteger>(_: T.Type) throws -> [T] {
        try checkConversionFits(T.self)
        return try stride(from: 0, to: bytes.count, by: 8).enumerated().map { index, i in
            var bits: UInt64 = 0
            for j in 0..<8 { bits |= UInt64(bytes[i + j]) << (8 * UInt64(j)) }
            let v = Int64(bitPattern: bits)
            guard let t = T(exactly: v) else {
                throw QGEMMError(.invalidValue, "int64 element [\(index)] = \(v) does not fit in \(T.self) (\(T.min)...\(T.max))")
            }
            return t
        }
    }

    /// float32 values, or float16 and float64 values converted to Float
    /// (float16 exactly; float64 rounded to nearest, ties to even, whatever
    /// the caller's rounding mode, so that a file reads the same Floats for
    /// every caller; a finite float64 beyond Float's range is refused; refused,
    /// as ``int8Values()`` says, where they would not fit in memory).
    public func floatValues() throws -> [Float] {
        if [.float16, .float32, .float64].contains(dtype) { try checkConversionFits(Float.self) }
        switch dtype {
        case .float16:
            return stride(from: 0, to: bytes.count, by: 2).map { i in Self.float(half: UInt16(bytes[i]) | UInt16(bytes[i + 1]) << 8) }
        case .float32:
            return stride(from: 0, to: bytes.count, by: 4).map { i in
                Float(bitPattern: UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24)
            }
        case .float64:
            return try withRoundingToNearest { try float64Values() }
        default:
            throw QGEMMError(.file, "expected float16, float32 or float64 data, got \(dtype.rawValue)")
        }
    }

    /// The float64 values rounded to Float in the current rounding mode.
    private func float64Values() throws -> [Float] {
        try stride(from: 0, to: bytes.count, by: 8).enumerated().map { index, i in
            var bits: UInt64 = 0
            for j in 0..<8 { bits |= UInt64(bytes[i + j]) << (8 * UInt64(j)) }
            let d = Double(bitPattern: bits), f = Float(d)
            guard f.isFinite || !d.isFinite else {
                throw QGEMMError(.invalidValue, "float64 element [\(index)] = \(d) is beyond Float's range")
            }
            return f
        }
    }

    /// IEEE binary16 to Float, exactly (every half value is a Float).
    static func float(half h: UInt16) -> Float {
        let sign = UInt32(h >> 15) << 31, exponent = Int(h >> 10 & 0x1F), fraction = UInt32(h & 0x3FF)
        switch exponent {
        case 0: // zero or subnormal: fraction · 2^−24
            let magnitude = Float(fraction) * 0x1p-24
            return sign != 0 ? -magnitude : magnitude
        case 31: // infinity or NaN (payload kept in the top fraction bits)
            return Float(bitPattern: sign | 0x7F80_0000 | fraction << 13)
        default:
            return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | fraction << 13)
        }
    }

    /// Refuses a conversion whose values, beside the file's bytes this array
    /// keeps, would not fit in the memory this process may use (a float16
    /// file takes twice its bytes as Float): allocating them would trap.
    private func checkConversionFits<T>(_: T.Type) throws {
        try checkResultFits(count, of: T.self, holding: bytes.count, "\(count) \(dtype.rawValue) values as \(T.self)")
    }

    private func require(_ t: DType) throws {
        guard dtype == t else { throw QGEMMError(.file, "expected \(t.rawValue) data, got \(dtype.rawValue)") }
    }

    // MARK: Writing

    /// The bytes of a `.npy` file holding this array.
    public func fileBytes() -> [UInt8] {
        headerBytes() + bytes
    }

    /// The magic, version, header length and header, padded so that the data
    /// starts on a multiple of 64 bytes.
    private func headerBytes() -> [UInt8] {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(dtype.descr)', 'fortran_order': False, 'shape': \(shapeText), }"
        let v2 = header.utf8.count + 12 > 65_535
        let prefix = v2 ? 12 : 10
        let total = (prefix + header.utf8.count + 1 + 63) / 64 * 64
        header += String(repeating: " ", count: total - prefix - header.utf8.count - 1) + "\n"
        var out: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, v2 ? 2 : 1, 0]
        let len = header.utf8.count
        out += v2 ? [UInt8(len & 0xFF), UInt8(len >> 8 & 0xFF), UInt8(len >> 16 & 0xFF), UInt8(len >> 24 & 0xFF)]
                  : [UInt8(len & 0xFF), UInt8(len >> 8)]
        out += Array(header.utf8)
        return out
    }

    /// Writes the array as a `.npy` file: the header, then the data straight
    /// from ``bytes``.
    ///
    /// - Throws: ``QGEMMError/Code/file`` when the file cannot be written. A regular file already at `url` is replaced in one rename
    ///   by a file written beside it, so a write that fails part way (a full disk, a killed
    ///   process) leaves the old file whole; a link is written through, and a file of several
    ///   names, or one that cannot be replaced so, is written in place (then a failed write
    ///   leaves it cut short, which every reader here refuses).
    public func write(to url: URL) throws {
        try RegularFile.save([headerBytes(), bytes], to: url)
    }
}

/// The Python-literal dict of a `.npy` header, parsed strictly.
enum NPYHeader {
    struct Fields {
        var descr: String?
        var fortranOrder: Bool?
        var shape: [Int]?
    }

    static func parse(_ text: String) throws -> Fields {
        var s = Substring(text)
        func fail(_ why: String) -> QGEMMError { QGEMMError(.file, "malformed .npy header (\(why)): \(text.prefix(120))") }
        func skipSpace() { while let c = s.first, c == " " || c == "\n" || c == "\t" || c == "\r" { s.removeFirst() } }
        func expect(_ c: Character) throws {
            skipSpace()
            guard s.first == c else { throw fail("expected '\(c)'") }
            s.removeFirst()
        }
        func string() throws -> String {
            skipSpace()
            guard let q = s.first, q == "'" || q == "\"" else { throw fail("expected a quoted string") }
            s.removeFirst()
            guard let end = s.firstIndex(of: q) else { throw fail("unterminated string") }
            let v = String(s[..<end])
            s = s[s.index(after: end)...]
            return v
        }
        func integer() throws -> Int {
            skipSpace()
            var digits = ""
            while let c = s.first, c.isASCII, c.isNumber, digits.count < 19 { digits.append(c); s.removeFirst() }
            if s.first == "L" { s.removeFirst() } // Python 2 long suffix
            guard let v = Int(digits) else { throw fail("expected a dimension") }
            return v
        }
        var fields = Fields()
        try expect("{")
        while true {
            skipSpace()
            if s.first == "}" { s.removeFirst(); break }
            let key = try string()
            try expect(":")
            switch key {
            case "descr":
                skipSpace()
                guard s.first == "'" || s.first == "\"" else {
                    throw QGEMMError(.file, "structured dtypes are not supported")
                }
                fields.descr = try string()
            case "fortran_order":
                skipSpace()
                if s.hasPrefix("True") { fields.fortranOrder = true; s.removeFirst(4) }
                else if s.hasPrefix("False") { fields.fortranOrder = false; s.removeFirst(5) }
                else { throw fail("fortran_order must be True or False") }
            case "shape":
                try expect("(")
                var dims: [Int] = []
                while true {
                    skipSpace()
                    if s.first == ")" { s.removeFirst(); break }
                    dims.append(try integer())
                    guard dims.count <= 32 else { throw fail("more than 32 dimensions") }
                    skipSpace()
                    if s.first == "," { s.removeFirst() } else if s.first != ")" { throw fail("expected ',' or ')' in shape") }
                }
                fields.shape = dims
            default:
                throw fail("unknown key '\(key)'")
            }
            skipSpace()
            if s.first == "," { s.removeFirst() } else if s.first != "}" { throw fail("expected ',' or '}'") }
        }
        skipSpace()
        guard s.isEmpty else { throw fail("trailing characters") }
        return fields
    }
}
