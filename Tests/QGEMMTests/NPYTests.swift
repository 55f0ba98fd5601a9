import Foundation
import Testing
@testable import QGEMM
import QGEMMBaseline

@Suite("NumPy .npy files")
struct NPYTests {
    /// float64 values read as the same Floats in every rounding mode of the
    /// caller (rounded to nearest), and the caller's mode is left as it was:
    /// read downward, 0.1 was the Float below 0.1f, and a value a hair above
    /// Float's largest was read as it upward (refused) but not downward.
    @Test func float64ReadsTheSameInEveryRoundingMode() throws {
        let hair = Double(Float.greatestFiniteMagnitude) * (1 + 0x1p-40)
        let values: [Double] = [0.1, -0.1, 1.0 / 3, -2.0 / 3, 1e-40, -1e-45, 0x1p-150, 12345.678901234, .infinity]
        let file = try NPYArray(float64: values, shape: [values.count]).fileBytes()
        let nearest = try NPYArray(parsing: file).floatValues()
        #expect(nearest[0] == Float(0.1) && nearest[8] == .infinity)
        let edge = try NPYArray(parsing: try NPYArray(float64: [hair, -hair], shape: [2]).fileBytes())
        #expect(try edge.floatValues() == [.greatestFiniteMagnitude, -.greatestFiniteMagnitude])
        for direction in SafeTensorsTests.directedRoundingModes {
            let mode = fegetround()
            fesetround(direction)
            let read = Result { try NPYArray(parsing: file).floatValues() }
            let edgeRead = Result { try edge.floatValues() }
            #expect(fegetround() == direction, "the reader left another rounding mode")
            fesetround(mode)
            #expect(try read.get().map(\.bitPattern) == nearest.map(\.bitPattern), "mode \(direction)")
            #expect(try edgeRead.get() == [.greatestFiniteMagnitude, -.greatestFiniteMagnitude], "mode \(direction)")
        }
    }

    @Test func roundTripsEveryDType() throws {
        let arrays: [NPYArray] = [
            try NPYArray(int8: [-128, -1, 0, 1, 127, 5], shape: [2, 3]),
            try NPYArray(uint8: [0, 1, 128, 255], shape: [4]),
            try NPYArray(int32: [.min, -1, 0, 1, .max, 42], shape: [3, 2]),
            try NPYArray(float32: [-1.5, 0, .infinity, 3.25e-20], shape: [2, 2]),
            try NPYArray(float64: [1e300, -2.5], shape: [2, 1]),
            try NPYArray(int8: [], shape: [0, 5]),
        ]
        for a in arrays {
            let b = try NPYArray(parsing: a.fileBytes())
            #expect(a == b)
            #expect(a.fileBytes().count % 64 == 0 || a.bytes.count > 0)
        }
        #expect(try NPYArray(parsing: arrays[0].fileBytes()).int8Values() == [-128, -1, 0, 1, 127, 5])
        #expect(try NPYArray(parsing: arrays[2].fileBytes()).int32Values() == [.min, -1, 0, 1, .max, 42])
        // A float64 beyond Float's range is refused, not read as infinity.
        #expect(errorCode { _ = try NPYArray(parsing: arrays[4].fileBytes()).floatValues() } == .invalidValue)
        #expect(try NPYArray(float64: [.infinity, -2.5], shape: [2]).floatValues() == [Float.infinity, -2.5])
        // Through a file.
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("qgemm-npy-\(UUID().uuidString).npy")
        defer { try? FileManager.default.removeItem(at: url) }
        try arrays[3].write(to: url)
        #expect(try NPYArray(contentsOf: url) == arrays[3])
    }

    /// A version-1.0 file with the given header text and data.
    func file(_ header: String, data: [UInt8], major: UInt8 = 1) -> [UInt8] {
        var h = header
        let prefix = major == 1 ? 10 : 12
        while (prefix + h.utf8.count + 1) % 64 != 0 { h += " " }
        h += "\n"
        var out: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, major, 0]
        let n = h.utf8.count
        out += major == 1 ? [UInt8(n & 0xFF), UInt8(n >> 8)] : [UInt8(n & 0xFF), UInt8(n >> 8 & 0xFF), 0, 0]
        return out + Array(h.utf8) + data
    }

    @Test func versionsTwoAndThree() throws {
        for major: UInt8 in [2, 3] {
            let a = try NPYArray(parsing: file("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", data: [1, 0, 0, 0, 255, 255, 255, 255], major: major))
            #expect(try a.int32Values() == [1, -1])
        }
    }

    func refusal(_ bytes: [UInt8]) -> String? {
        do { _ = try NPYArray(parsing: bytes); return nil } catch let e as QGEMMError {
            #expect(e.code == .file)
            return e.message
        } catch { return "\(error)" }
    }

    @Test func malformedFilesAreRefusedWithTheirReason() throws {
        let good = file("{'descr': '|i1', 'fortran_order': False, 'shape': (2, 2), }", data: [1, 2, 3, 4])
        #expect(refusal(good) == nil)
        #expect(refusal(Array("not numpy at all".utf8))?.contains("magic") == true)
        // A file cut inside its first 10 bytes is truncated, not missing its magic (unless the cut leaves none).
        #expect(refusal(Array(good.prefix(9)))?.contains("truncated: 9 bytes") == true)
        #expect(refusal(Array(good.prefix(3)))?.contains("truncated: 3 bytes") == true)
        #expect(refusal([])?.contains("magic") == true)
        #expect(refusal(Array(good.prefix(3)) + [0])?.contains("magic") == true)
        var v4 = good; v4[6] = 4
        #expect(refusal(v4)?.contains("version") == true)
        #expect(refusal(file("{'descr': '|i1', 'fortran_order': True, 'shape': (2, 2), }", data: [1, 2, 3, 4]))?.contains("Fortran") == true)
        #expect(refusal(file("{'descr': '>i4', 'fortran_order': False, 'shape': (1,), }", data: [0, 0, 0, 1]))?.contains("big-endian") == true)
        #expect(refusal(file("{'descr': '<u8', 'fortran_order': False, 'shape': (1,), }", data: [UInt8](repeating: 0, count: 8)))?.contains("unsupported dtype") == true)
        #expect(refusal(file("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", data: [UInt8](repeating: 0, count: 8)))?.contains("unsupported dtype") == true)
        #expect(refusal(file("{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (1,), }", data: [0, 0, 0, 0]))?.contains("structured") == true)
        #expect(refusal(Array(good.dropLast()))?.contains("truncated") == true)
        #expect(refusal(good + [0])?.contains("unexpected bytes") == true)
        #expect(refusal(file("{'descr': '|i1', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", data: []))?.contains("overflows") == true)
        #expect(refusal(file("{'descr': '|i1', 'fortran_order': False, 'shape': (2, -2), }", data: [])) != nil)
        #expect(refusal(file("{'descr': '|i1', 'fortran_order': False }", data: []))?.contains("shape") == true)
        #expect(refusal(file("{'descr': '|i1', 'fortran_order': False, 'shape': (2, 2), 'extra': 1}", data: [1, 2, 3, 4]))?.contains("unknown key") == true)
        #expect(refusal(file("{'descr': '|i1', 'fortran_order': False, 'shape': (2, 2)", data: [1, 2, 3, 4])) != nil)
        // A header length over the limit, and one pointing past the end of the file.
        var big: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 2, 0, 0xFF, 0xFF, 0xFF, 0x7F]
        #expect(refusal(big)?.contains("exceeds the limit") == true)
        big = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, 0x00, 0x10]
        #expect(refusal(big)?.contains("truncated") == true)
        // Wrong rank and wrong dtype for a typed read.
        let a = try NPYArray(parsing: good)
        #expect(errorCode { _ = try a.requireRank(1, name: "B") } == .invalidShape)
        #expect(errorCode { _ = try a.int32Values() } == .file)
    }

    @Test func randomBytesNeverCrash() {
        var rng = CheckRandom(seed: 12)
        let good = file("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", data: [UInt8](repeating: 0, count: 12))
        for _ in 0..<3000 {
            var b = good
            for _ in 0..<Int(rng.next() % 4 + 1) { b[Int(rng.next() % UInt64(b.count))] = UInt8(truncatingIfNeeded: rng.next()) }
            if rng.next() % 3 == 0 { b = Array(b.prefix(Int(rng.next() % UInt64(b.count)))) }
            _ = try? NPYArray(parsing: b)
        }
    }

    /// NumPy's default integer (int64) and half precision (float16) are read
    /// and converted; values that do not fit the requested type are refused.
    @Test func int64AndFloat16AreConverted() throws {
        let ints: [Int64] = [1, -2, 300, -70_000]
        let int64 = try NPYArray(parsing: file("{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }",
                                                data: ints.flatMap { withUnsafeBytes(of: $0.littleEndian, Array.init) }))
        #expect(int64.dtype == .int64 && int64.count == 4)
        #expect(try int64.int32Values() == [1, -2, 300, -70_000])
        #expect(errorCode { _ = try int64.int8Values() } == .invalidValue)   // 300 is not an Int8
        #expect(errorCode { _ = try int64.uint8Values() } == .invalidValue)  // −2 is not a UInt8
        let big = try NPYArray(parsing: file("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }",
                                              data: withUnsafeBytes(of: Int64(1 << 40).littleEndian, Array.init)))
        #expect(errorCode { _ = try big.int32Values() } == .invalidValue)
        // float16: 1, −2, 65504 (the largest), 2^−24 (the smallest subnormal), −0, +Inf.
        let halves: [UInt16] = [0x3C00, 0xC000, 0x7BFF, 0x0001, 0x8000, 0x7C00]
        let f16 = try NPYArray(parsing: file("{'descr': '<f2', 'fortran_order': False, 'shape': (6,), }",
                                              data: halves.flatMap { withUnsafeBytes(of: $0.littleEndian, Array.init) }))
        let f = try f16.floatValues()
        #expect(f[0] == 1 && f[1] == -2 && f[2] == 65504 && f[3] == 0x1p-24 && f[4] == 0 && f[4].sign == .minus && f[5] == .infinity)
        #expect(errorCode { _ = try f16.int32Values() } == .file)
        // float64 beyond Float's range is refused, not turned into infinity.
        let huge = try NPYArray(parsing: file("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }",
                                               data: withUnsafeBytes(of: (1e300).bitPattern.littleEndian, Array.init)))
        #expect(errorCode { _ = try huge.floatValues() } == .invalidValue)
    }
}
