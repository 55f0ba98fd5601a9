// The rules of the 32-bit routes of the fixed-point roundings, shared by the
// 256-bit and 512-bit epilogues (epilogue_ymm.h, epilogue_zmm.h). The narrow
// route of single rounding: when every
// channel's shift is in [−31, −2], t = 31 − shift ≥ 33 and, with H the high
// half of the product acc·M0 (floor(acc·M0 / 2^32)),
//     floor((acc·M0 + 2^(t−1)) / 2^t) = floor((H + 2^(t−33)) / 2^(t−32)),
// because the dropped low half adds less than one to an integer before a
// floor division by the integer 2^(t−32). |H| < 2^30, so with c = t − 32 the
// output zero point rides in the same add: (H + 2^(c−1) + Z_Y·2^c) >> c is the
// rounded value plus Z_Y exactly, as long as that sum stays inside int32.
// Plain C: which channels qualify (their constants are c = −1 − shift and
// 2^(c−1) + Z_Y·2^c). The 256-bit epilogue tests them with vector code of
// its own (epilogue_ymm.h); the 512-bit one's params call this rule
// (epilogue_zmm.h); the kernel tester aims its cases at its edges.
#ifndef QG_NARROW_REQUANTIZE_H
#define QG_NARROW_REQUANTIZE_H

#include <stdint.h>

/// Whether a channel with this shift and output zero point `zy` can take the
/// narrow route: shift in [−31, −2], and 2^(c−1) + |zy|·2^c ≤ 2^30, which keeps
/// H + 2^(c−1) + zy·2^c inside int32 (|H| ≤ 2^30); that is,
/// 1 + 2·|zy| ≤ 2^(32 + shift). In 32 bits and without branches, so that a
/// loop over the channels vectorizes: |zy| > 2^29 never qualifies (2^(32 +
/// shift) ≤ 2^30), and below that 1 + 2·|zy| fits; the & 31 keeps the shift
/// defined where the range test fails anyway.
static inline int qg_narrow_channel(int32_t shift, int32_t zy) {
    const uint32_t z = zy < 0 ? 0u - (uint32_t)zy : (uint32_t)zy;
    return (shift >= -31) & (shift <= -2) & (z <= (1u << 29)) & (1 + 2 * z <= 1u << ((32 + shift) & 31));
}

/// Whether a channel with this shift lets double rounding work in 32-bit
/// lanes (the rows routes of both epilogues): with no left shift (shift ≤ 0),
/// SRDHM(acc, M0) = floor((acc·M0 + 2^30) / 2^31) has |value| < 2^31 − 1 for
/// |acc| ≤ 2^31 − 1 and M0 < 2^31, so it is bits 31…62 of the 64-bit sum as
/// an int32, and the rounding divide by 2^(−shift) that follows works on it
/// (its remainder against half the divisor, one more for a negative value).
/// A left shift would have to come first, in more than 32 bits. (Shifts
/// below −31 are outside qgemm.h's contract; they go the general way.) The
/// 512-bit epilogue calls this rule; the 256-bit one tests the same bounds
/// with vector code of its own (qg_ymm_init_params).
static inline int qg_double_rows_channel(int32_t shift) { return (shift >= -31) & (shift <= 0); }

#endif
