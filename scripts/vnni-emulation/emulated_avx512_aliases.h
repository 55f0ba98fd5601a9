// Force-included by scripts/check-vnni-emulated before kernel_avx512vnni.c:
// immintrin.h is read first (its include guard then makes the kernel's own
// include a no-op), and only after it are the AVX-512 names the kernel uses
// renamed to the stand-ins of emulated_avx512.h (each #undef first: some of
// them are macros in clang's headers).
#include "emulated_avx512.h"

#undef __m512i
#define __m512i qg_emu512
#undef __m512
#define __m512 qg_emu512f
#undef _mm512_setzero_si512
#define _mm512_setzero_si512 qg_emu_setzero
#undef _mm512_loadu_si512
#define _mm512_loadu_si512 qg_emu_loadu
#undef _mm512_storeu_si512
#define _mm512_storeu_si512 qg_emu_storeu
#undef _mm512_set1_epi32
#define _mm512_set1_epi32 qg_emu_set1
#undef _mm512_set1_epi64
#define _mm512_set1_epi64 qg_emu_set1_epi64
#undef _mm512_srli_epi32
#define _mm512_srli_epi32 qg_emu_srli_epi32
#undef _mm512_cmpgt_epi32_mask
#define _mm512_cmpgt_epi32_mask qg_emu_cmpgt_epi32_mask
#undef _mm512_mask_add_epi32
#define _mm512_mask_add_epi32 qg_emu_mask_add_epi32
#undef _mm512_adds_epi16
#define _mm512_adds_epi16 qg_emu_adds_epi16
#undef _mm512_set1_epi16
#define _mm512_set1_epi16 qg_emu_set1_epi16
#undef _mm512_dpbusd_epi32
#define _mm512_dpbusd_epi32 qg_emu_dpbusd
#undef _mm512_add_epi32
#define _mm512_add_epi32 qg_emu_add_epi32
#undef _mm512_sub_epi32
#define _mm512_sub_epi32 qg_emu_sub_epi32
#undef _mm512_mullo_epi32
#define _mm512_mullo_epi32 qg_emu_mullo_epi32
#undef _mm512_add_epi64
#define _mm512_add_epi64 qg_emu_add_epi64
#undef _mm512_sub_epi64
#define _mm512_sub_epi64 qg_emu_sub_epi64
#undef _mm512_and_si512
#define _mm512_and_si512 qg_emu_and
#undef _mm512_xor_si512
#define _mm512_xor_si512 qg_emu_xor
#undef _mm512_sllv_epi64
#define _mm512_sllv_epi64 qg_emu_sllv_epi64
#undef _mm512_max_epi64
#define _mm512_max_epi64 qg_emu_max_epi64
#undef _mm512_min_epi64
#define _mm512_min_epi64 qg_emu_min_epi64
#undef _mm512_mul_epi32
#define _mm512_mul_epi32 qg_emu_mul_epi32
#undef _mm512_srli_epi64
#define _mm512_srli_epi64 qg_emu_srli_epi64
#undef _mm512_slli_epi64
#define _mm512_slli_epi64 qg_emu_slli_epi64
#undef _mm512_mask_blend_epi32
#define _mm512_mask_blend_epi32 qg_emu_mask_blend_epi32
#undef _mm512_srav_epi64
#define _mm512_srav_epi64 qg_emu_srav_epi64
#undef _mm512_srai_epi64
#define _mm512_srai_epi64 qg_emu_srai_epi64
#undef _mm512_srai_epi32
#define _mm512_srai_epi32 qg_emu_srai_epi32
#undef _mm512_cvtepi32_epi8
#define _mm512_cvtepi32_epi8 qg_emu_cvtepi32_epi8
#undef _mm512_max_epi32
#define _mm512_max_epi32 qg_emu_max_epi32
#undef _mm512_min_epi32
#define _mm512_min_epi32 qg_emu_min_epi32
#undef _mm512_sllv_epi32
#define _mm512_sllv_epi32 qg_emu_sllv_epi32
#undef _mm512_srav_epi32
#define _mm512_srav_epi32 qg_emu_srav_epi32
#undef _mm512_permutex2var_epi32
#define _mm512_permutex2var_epi32 qg_emu_permutex2var_epi32
#undef _mm512_setzero_ps
#define _mm512_setzero_ps qg_emu_setzero_ps
#undef _mm512_set1_ps
#define _mm512_set1_ps qg_emu_set1_ps
#undef _mm512_loadu_ps
#define _mm512_loadu_ps qg_emu_loadu_ps
#undef _mm512_storeu_ps
#define _mm512_storeu_ps qg_emu_storeu_ps
#undef _mm512_mul_ps
#define _mm512_mul_ps qg_emu_mul_ps
#undef _mm512_add_ps
#define _mm512_add_ps qg_emu_add_ps
#undef _mm512_fmadd_ps
#define _mm512_fmadd_ps qg_emu_fmadd_ps
#undef _mm512_mask_storeu_ps
#define _mm512_mask_storeu_ps qg_emu_mask_storeu_ps
// The aligned load and store: the unaligned stand-ins (the same bytes move).
#undef _mm512_load_ps
#define _mm512_load_ps qg_emu_loadu_ps
#undef _mm512_store_ps
#define _mm512_store_ps qg_emu_storeu_ps
#undef _mm512_store_si512
#define _mm512_store_si512 qg_emu_store_aligned
#undef _mm512_mask_storeu_epi32
#define _mm512_mask_storeu_epi32 qg_emu_mask_storeu_epi32
#undef _mm512_castps_si512
#define _mm512_castps_si512 qg_emu_castps_si512
#undef _mm512_load_si512
#define _mm512_load_si512 qg_emu_loadu
#undef _mm512_sub_epi8
#define _mm512_sub_epi8 qg_emu_sub_epi8
#undef _mm512_cvtph_ps
#define _mm512_cvtph_ps qg_emu_cvtph_ps
#undef _mm512_srli_epi16
#define _mm512_srli_epi16 qg_emu_srli_epi16
#undef _mm512_gf2p8affine_epi64_epi8
#define _mm512_gf2p8affine_epi64_epi8 qg_emu_gf2p8affine_epi64_epi8
#undef _mm512_max_ps
#define _mm512_max_ps qg_emu_max_ps
#undef _mm512_min_ps
#define _mm512_min_ps qg_emu_min_ps
#undef _mm512_cvtepi32_ps
#define _mm512_cvtepi32_ps qg_emu_cvtepi32_ps
#undef _mm512_cvtps_epi32
#define _mm512_cvtps_epi32 qg_emu_cvtps_epi32
#undef _mm512_permutexvar_epi32
#define _mm512_permutexvar_epi32 qg_emu_permutexvar_epi32
#undef _mm512_packs_epi32
#define _mm512_packs_epi32 qg_emu_packs_epi32
#undef _mm512_packs_epi16
#define _mm512_packs_epi16 qg_emu_packs_epi16
#undef _mm512_packus_epi16
#define _mm512_packus_epi16 qg_emu_packus_epi16
#undef _mm512_max_epi8
#define _mm512_max_epi8 qg_emu_max_epi8
#undef _mm512_min_epi8
#define _mm512_min_epi8 qg_emu_min_epi8
#undef _mm512_max_epu8
#define _mm512_max_epu8 qg_emu_max_epu8
#undef _mm512_min_epu8
#define _mm512_min_epu8 qg_emu_min_epu8
#undef _mm512_set1_epi8
#define _mm512_set1_epi8 qg_emu_set1_epi8
#undef _mm512_castsi512_si128
#define _mm512_castsi512_si128 qg_emu_castsi512_si128
#undef _mm512_extracti32x4_epi32
#define _mm512_extracti32x4_epi32 qg_emu_extracti32x4_epi32
