import FuzzHooks

/// Kernel variants a CPU would fix (the store route across lines, the avx2
/// path's widening by shuffles and its weights widened ahead, 4-bit decode
/// in one stream or two, the avxvnni 4-bit tile's three-row passes) and the
/// split of row quantization over threads that small inputs never reach, drawn
/// from one byte: where its low bit is 0 the CPU's own, else each switch
/// from one further bit. The kernel tester forces them on every CPU; this
/// lets the differential targets reach them too.
public struct ForcedVariants {
    public let byte: UInt8

    public init(_ byte: UInt8) { self.byte = byte }

    /// Sets the switches, runs `body`, and gives the CPU's answers back,
    /// whatever `body` does.
    public func around<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        guard byte & 1 == 1 else { return try body() }
        set(forcing: true)
        defer { set(forcing: false) }
        return try body()
    }

    /// Every switch from its bit, or (not `forcing`) back to the CPU's answer:
    /// one list, so that no switch is set and then left forced.
    private func set(forcing: Bool) {
        func bit(_ i: UInt8) -> Int32 { forcing ? Int32((byte >> i) & 1) : -1 }
        qg_cpu_force_line_crossing_stores(bit(1))
        qg_cpu_force_widen_bytes_by_shuffles(bit(2))
        qg_cpu_force_avx2_widens_weights_ahead(bit(3))
        qg_cpu_force_one_stream_decode(bit(4))
        // 0 bytes: two-row calls stream one panel at a time whatever their
        // weights' size (the CPU's rule keeps the L2's worth whole).
        qg_cpu_force_two_row_stream_min_bytes(bit(5) == 1 ? 0 : -1)
        qg_cpu_force_w4_ymm_three_row_passes(bit(6))
        // Rows quantized in as many parts as there are threads (and rows),
        // where the rule waits for 2^15 values a part: the parts' first
        // faults must combine into the one a single pass finds.
        qg_force_row_part_values(bit(7) == 1 ? 1 : 0)
    }

    public var description: String {
        byte & 1 == 0 ? "the CPU's variants" : "forced variants 0x\(String(byte, radix: 16))"
    }
}
