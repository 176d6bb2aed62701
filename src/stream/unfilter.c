/*
 * PNG row unfiltering (W3C PNG 3rd edition, section 9: https://www.w3.org/TR/png-3/#9Filters)
 * for src/stream/png.ts, built to WebAssembly SIMD128 by scripts/build-stream-wasm.sh into
 * unfilter-wasm.ts. No libc.
 *
 * Paeth dominates photographs and is serial along a row (each byte needs its left neighbour,
 * already unfiltered), so for 3 to 8 bytes per pixel it runs one pixel per step with the
 * pixel's bytes in 16-bit lanes, as libpng's filter_sse2_intrinsics.c does; Up vectorises
 * across the row; Sub and Average are plain loops.
 *
 * Memory contract: each row may be read up to 8 bytes past its end, and bytes past a pixel
 * (up to 8 from its start) are rewritten with the values they had.
 */
#include <stdint.h>
#include <wasm_simd128.h>

static inline int paeth(int a, int b, int c) {
  int p = b - c;
  int q = a - c;
  int pa = p < 0 ? -p : p;
  int pb = q < 0 ? -q : q;
  int r = p + q;
  int pc = r < 0 ? -r : r;
  return (pa <= pb && pa <= pc) ? a : (pb <= pc ? b : c);
}

/* Paeth, 3 to 8 bytes per pixel: lanes 0..bpp-1 hold one pixel; lanes from bpp on keep `x`. */
static void paeth_lanes(uint8_t *row, const uint8_t *prev, uint32_t n, uint32_t bpp) {
  static const int16_t lanes[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  const v128_t keep = wasm_i16x8_ge(wasm_v128_load(lanes), wasm_i16x8_splat((int16_t)bpp));
  v128_t a = wasm_i16x8_splat(0);
  v128_t c = wasm_i16x8_splat(0);
  for (uint32_t i = 0; i < n; i += bpp) {
    /* Only `a` (this pixel's result) carries from one step to the next: what depends on the
     * row above alone (b - c, b - 2c) and the store's blend stay off that chain. */
    v128_t b = wasm_u16x8_load8x8(prev + i);
    v128_t x = wasm_u16x8_load8x8(row + i);
    v128_t bc = wasm_i16x8_sub(b, c);
    v128_t pa = wasm_i16x8_abs(bc);
    v128_t ac = wasm_i16x8_sub(a, c);
    v128_t pb = wasm_i16x8_abs(ac);
    v128_t pc = wasm_i16x8_abs(wasm_i16x8_add(ac, bc));
    v128_t use_a = wasm_v128_and(wasm_i16x8_le(pa, pb), wasm_i16x8_le(pa, pc));
    v128_t use_b = wasm_i16x8_le(pb, pc);
    v128_t predicted = wasm_v128_bitselect(a, wasm_v128_bitselect(b, c, use_b), use_a);
    /* Byte-wise add: the low byte wraps mod 256, the high byte stays 0 (0 + 0, no carry). */
    v128_t r = wasm_i8x16_add(x, predicted);
    wasm_v128_store64_lane(row + i, wasm_u8x16_narrow_i16x8(wasm_v128_bitselect(x, r, keep), r), 0);
    a = r;
    c = b;
  }
}

/*
 * Unfilters one row in place: `row[0]` is the filter type, `row[1..stride]` the filtered bytes;
 * `prev` is laid out the same, holding the row above unfiltered (zeros above the first row).
 * Returns 0, or -1 for an unknown filter type.
 */
__attribute__((export_name("unfilter"))) int unfilter(uint8_t *row, const uint8_t *prev, uint32_t stride, uint32_t bpp) {
  uint8_t *r = row + 1;
  const uint8_t *p = prev + 1;
  switch (row[0]) {
    case 0:
      return 0;
    case 1:
      for (uint32_t i = bpp; i < stride; i++) r[i] = (uint8_t)(r[i] + r[i - bpp]);
      return 0;
    case 2:
      for (uint32_t i = 0; i < stride; i++) r[i] = (uint8_t)(r[i] + p[i]);
      return 0;
    case 3:
      for (uint32_t i = 0; i < bpp && i < stride; i++) r[i] = (uint8_t)(r[i] + (p[i] >> 1));
      for (uint32_t i = bpp; i < stride; i++) r[i] = (uint8_t)(r[i] + ((r[i - bpp] + p[i]) >> 1));
      return 0;
    case 4:
      if (bpp >= 3 && bpp <= 8) {
        paeth_lanes(r, p, stride, bpp);
        return 0;
      }
      for (uint32_t i = 0; i < bpp && i < stride; i++) r[i] = (uint8_t)(r[i] + p[i]);
      for (uint32_t i = bpp; i < stride; i++) r[i] = (uint8_t)(r[i] + paeth(r[i - bpp], p[i], p[i - bpp]));
      return 0;
    default:
      return -1;
  }
}
