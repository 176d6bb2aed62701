/*
 * Undo TIFF Predictor 2 (TIFF 6.0 section 14, horizontal differencing) for some rows of a
 * decoded tile and copy a column range of each row to an output buffer, in one pass, with
 * WebAssembly SIMD128. Built into src/format/unpredict-wasm.ts by scripts/build-wasm.sh;
 * src/format/unpredict.ts is the only user and holds the plain JS equivalent.
 *
 * Undoing the predictor makes each sample the running sum (mod 2^8 or 2^16) of its channel
 * along the row. Columns left of the wanted range are only summed (one vector add per 16
 * bytes); the wanted range is prefix-summed inside each vector with log2 shifted adds and
 * written straight to the output. The tile is only read.
 *
 * Loads may run up to 47 bytes past the last byte of a row a call touches, so the caller
 * keeps 64 readable bytes after the tile. Stores never leave the output range.
 */
#include <stdint.h>
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name)))
#define INLINE static inline __attribute__((always_inline))

typedef uint8_t u8;

/* Lane i of x (i < 16) and of zero (i >= 16): a shuffle window sliding over the pair. */
#define WINDOW(a, b, n)                                                                                            \
  wasm_i8x16_shuffle(a, b, (n) + 0, (n) + 1, (n) + 2, (n) + 3, (n) + 4, (n) + 5, (n) + 6, (n) + 7, (n) + 8,         \
                     (n) + 9, (n) + 10, (n) + 11, (n) + 12, (n) + 13, (n) + 14, (n) + 15)

/*
 * x moved n bytes toward higher lanes (zeros shifted in), written as a window of (zero, x) so
 * V8 emits one palignr. Every call has a constant n, so the switch folds away.
 */
INLINE v128_t shift_up(v128_t x, int n) {
  const v128_t zero = wasm_i64x2_const(0, 0);
  switch (n) {
    case 1: return WINDOW(zero, x, 15);
    case 2: return WINDOW(zero, x, 14);
    case 3: return WINDOW(zero, x, 13);
    case 4: return WINDOW(zero, x, 12);
    case 6: return WINDOW(zero, x, 10);
    case 8: return WINDOW(zero, x, 8);
    default: return WINDOW(zero, x, 4); /* 12 */
  }
}

/* x moved n bytes toward lower lanes (zeros shifted in). */
INLINE v128_t shift_down(v128_t x, int n) {
  const v128_t zero = wasm_i64x2_const(0, 0);
  switch (n) {
    case 1: return WINDOW(x, zero, 1);
    case 2: return WINDOW(x, zero, 2);
    case 3: return WINDOW(x, zero, 3);
    case 4: return WINDOW(x, zero, 4);
    case 6: return WINDOW(x, zero, 6);
    default: return WINDOW(x, zero, 8);
  }
}

/* The first p bytes of x repeated across the vector. */
INLINE v128_t spread_first(v128_t x, int p) {
  switch (p) {
    case 1: return wasm_i8x16_shuffle(x, x, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    case 2: return wasm_i8x16_shuffle(x, x, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1);
    case 3: return wasm_i8x16_shuffle(x, x, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0);
    case 4: return wasm_i8x16_shuffle(x, x, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3);
    case 6: return wasm_i8x16_shuffle(x, x, 0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 0, 1, 2, 3);
    default: return wasm_i8x16_shuffle(x, x, 0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7);
  }
}

/*
 * Swizzle indices repeating the last p bytes of a vector, for the p whose repeat is no 16-,
 * 32- or 64-bit lane pattern: [1] = 15 15..., [3] = 13 14 15 13..., [6] = 10..15 10....
 * Deliberately not `static const`: a known constant is folded into a shuffle, for which V8
 * (Node 20) rebuilds the 16-byte mask in every iteration; swizzling with a mask loaded before
 * the loop is ~25% faster. The lane patterns (p = 2, 4, 8) are cheapest as shuffles.
 */
u8 SPREAD_LAST[7][16] = {
    [1] = {15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15},
    [3] = {13, 14, 15, 13, 14, 15, 13, 14, 15, 13, 14, 15, 13, 14, 15, 13},
    [6] = {10, 11, 12, 13, 14, 15, 10, 11, 12, 13, 14, 15, 10, 11, 12, 13},
};

/* The last p bytes of x repeated across the vector (mask: SPREAD_LAST[p] if there is one). */
INLINE v128_t spread_last(v128_t x, int p, v128_t mask) {
  switch (p) {
    case 2: return wasm_i8x16_shuffle(x, x, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15);
    case 4: return wasm_i8x16_shuffle(x, x, 12, 13, 14, 15, 12, 13, 14, 15, 12, 13, 14, 15, 12, 13, 14, 15);
    case 8: return wasm_i8x16_shuffle(x, x, 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15);
    default: return wasm_i8x16_swizzle(x, mask);
  }
}

/* Lane-wise sum modulo 2^8 or, for 16-bit samples (wide), 2^16. */
INLINE v128_t add(v128_t a, v128_t b, int wide) { return wide ? wasm_i16x8_add(a, b) : wasm_i8x16_add(a, b); }

/* Inclusive prefix sum, within x, of the pixels of p bytes: log2(16 / p) shifted adds. */
INLINE v128_t scan(v128_t x, int p, int wide) {
  for (int s = p; s < 16; s *= 2) x = add(x, shift_up(x, s), wide);
  return x;
}

/* Lanes below n are all ones: load at ONES_THEN_ZEROS + 16 - n, for 0 <= n <= 16. */
static const u8 ONES_THEN_ZEROS[32] = {255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255};

/* The 16 bytes at p with all but the first n (clamped to 0..16) zeroed. */
INLINE v128_t load_first(const u8 *p, int n) {
  int k = n < 0 ? 0 : n > 16 ? 16 : n;
  return wasm_v128_and(wasm_v128_load(p), wasm_v128_load(ONES_THEN_ZEROS + 16 - k));
}

/* Stores the first n bytes of x, 1 <= n <= 16. */
INLINE void store_first(u8 *dst, v128_t x, int n) {
  if (n == 16) {
    wasm_v128_store(dst, x);
    return;
  }
  if (n & 8) {
    wasm_v128_store64_lane(dst, x, 0);
    x = shift_down(x, 8);
    dst += 8;
  }
  if (n & 4) {
    wasm_v128_store32_lane(dst, x, 0);
    x = shift_down(x, 4);
    dst += 4;
  }
  if (n & 2) {
    wasm_v128_store16_lane(dst, x, 0);
    x = shift_down(x, 2);
    dst += 2;
  }
  if (n & 1) wasm_v128_store8_lane(dst, x, 0);
}

/* Per channel, the sum of the first `left` bytes of a row, repeated across a vector. */
INLINE v128_t sum_left(const u8 *row, int left, int p, int wide) {
  const v128_t zero = wasm_i64x2_const(0, 0);
  v128_t a = zero;
  if (16 % p == 0) {
    int i = 0;
    for (; i + 16 <= left; i += 16) a = add(a, wasm_v128_load(row + i), wide);
    if (i < left) a = add(a, load_first(row + i, left - i), wide);
    for (int s = 8; s >= p; s /= 2) a = add(a, shift_down(a, s), wide);
    return spread_first(a, p);
  }
  /* p = 3 or 6: blocks of 48 bytes, a multiple of both, in three accumulators. */
  v128_t b = zero, c = zero;
  int i = 0;
  for (; i + 48 <= left; i += 48) {
    a = add(a, wasm_v128_load(row + i), wide);
    b = add(b, wasm_v128_load(row + i + 16), wide);
    c = add(c, wasm_v128_load(row + i + 32), wide);
  }
  if (i < left) {
    a = add(a, load_first(row + i, left - i), wide);
    b = add(b, load_first(row + i + 16, left - i - 16), wide);
    c = add(c, load_first(row + i + 32, left - i - 32), wide);
  }
  /* 48 bytes -> 12 (byte j gathers bytes j, 12 + j, 24 + j, 36 + j) -> 6 -> 3. */
  a = add(a, WINDOW(a, b, 12), wide);
  a = add(a, WINDOW(b, c, 8), wide);
  a = add(a, shift_down(c, 4), wide);
  a = add(a, shift_down(a, 6), wide);
  if (p == 3) a = add(a, shift_down(a, 3), wide);
  return spread_first(a, p);
}

/*
 * The row loop for pixels of p bytes, inlined once per layout with constant p and wide.
 * The wanted bytes are scanned 16 at a time. The last p bytes of a scanned vector hold every
 * channel's running sum, in the channel order the next 16 bytes start with (byte 16 - p + k
 * has the channel of byte 16 + k), so repeating them across a vector gives the next carry,
 * also when a pixel straddles two vectors.
 */
INLINE void rows(const u8 *row, u8 *dst, int rowBytes, int rowCount, int left, int bytes, int outStride, int p,
                 int wide) {
  const v128_t mask = wasm_v128_load(SPREAD_LAST[p < 7 ? p : 0]);
  for (int r = 0; r < rowCount; r++, row += rowBytes, dst += outStride) {
    v128_t carry = left > 0 ? sum_left(row, left, p, wide) : wasm_i64x2_const(0, 0);
    const u8 *src = row + left;
    u8 *out = dst;
    int n = bytes;
    for (; n > 16; n -= 16, src += 16, out += 16) {
      v128_t x = add(scan(wasm_v128_load(src), p, wide), carry, wide);
      wasm_v128_store(out, x);
      carry = spread_last(x, p, mask);
    }
    store_first(out, add(scan(wasm_v128_load(src), p, wide), carry, wide), n);
  }
}

/*
 * For rows firstRow..firstRow+rowCount-1 of the tile at `tile` (tileSize x tileSize pixels of
 * `channels` samples of `bytesPerSample` bytes, little-endian), undo Predictor 2 if
 * `predictor` is 2 and write pixels [tileX, tileX + width) of each row to `out`, advancing
 * `outStride` bytes per row. Returns 0, or 1 for a sample layout it has no loop for
 * (channels outside 1..4, or bytesPerSample not 1 or 2), having written nothing.
 */
EXPORT(unpredict)
int unpredict(const u8 *tile, u8 *out, int tileSize, int channels, int bytesPerSample, int predictor, int firstRow,
              int rowCount, int tileX, int width, int outStride) {
  if (channels < 1 || channels > 4 || (bytesPerSample != 1 && bytesPerSample != 2)) return 1;
  const int pixel = channels * bytesPerSample;
  const int rowBytes = tileSize * pixel;
  const u8 *row = tile + firstRow * rowBytes;
  const int left = tileX * pixel;
  const int bytes = width * pixel;
  if (rowCount <= 0 || bytes <= 0) return 0;
  if (predictor != 2) {
    for (int r = 0; r < rowCount; r++) __builtin_memcpy(out + r * outStride, row + r * rowBytes + left, bytes);
    return 0;
  }
  switch (bytesPerSample * 8 + channels) {
    case 9: rows(row, out, rowBytes, rowCount, left, bytes, outStride, 1, 0); break;
    case 10: rows(row, out, rowBytes, rowCount, left, bytes, outStride, 2, 0); break;
    case 11: rows(row, out, rowBytes, rowCount, left, bytes, outStride, 3, 0); break;
    case 12: rows(row, out, rowBytes, rowCount, left, bytes, outStride, 4, 0); break;
    case 17: rows(row, out, rowBytes, rowCount, left, bytes, outStride, 2, 1); break;
    case 18: rows(row, out, rowBytes, rowCount, left, bytes, outStride, 4, 1); break;
    case 19: rows(row, out, rowBytes, rowCount, left, bytes, outStride, 6, 1); break;
    default: rows(row, out, rowBytes, rowCount, left, bytes, outStride, 8, 1); break;
  }
  return 0;
}

/*
 * PNG row filtering (PNG spec, 3rd edition, section 7.3 and 9: filter method 0) for the PNG
 * writer, and Adler-32 (RFC 1950 section 8.2) for its zlib stream. src/format/unpredict.ts
 * holds the plain JS equivalents, which produce the same bytes.
 *
 * Encoding is parallel across a row: every predictor input (a = left, b = above, c = upper
 * left) is a raw byte, never a filtered one, so 16 bytes are filtered per step.
 */

/* Lanes below bpp (1..8) zero, the rest all ones: the first vector of a row has no left pixel. */
static const u8 ZEROS_THEN_ONES[32] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                       255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255};

/* Lane-wise |x - y| of unsigned bytes. */
INLINE v128_t absdiff(v128_t x, v128_t y) { return wasm_v128_or(wasm_u8x16_sub_sat(x, y), wasm_u8x16_sub_sat(y, x)); }

/*
 * The Paeth predictor (PNG spec 9.4) of 16 bytes, in 8-bit lanes: pa = |b - c| and
 * pb = |a - c| fit a byte; pc = |(b - c) + (a - c)| is |pa - pb| when the two differences have
 * opposite signs and pa + pb otherwise, where saturating at 255 changes no comparison (both
 * pa <= pc and pb <= pc hold then). Ties go to a, then b, as the spec requires.
 */
INLINE v128_t paeth(v128_t a, v128_t b, v128_t c) {
  v128_t pa = absdiff(b, c);
  v128_t pb = absdiff(a, c);
  v128_t same = wasm_v128_not(wasm_v128_xor(wasm_u8x16_ge(a, c), wasm_u8x16_ge(b, c)));
  v128_t pc = wasm_v128_bitselect(wasm_u8x16_add_sat(pa, pb), absdiff(pa, pb), same);
  v128_t take_a = wasm_v128_and(wasm_u8x16_le(pa, pb), wasm_u8x16_le(pa, pc));
  v128_t take_b = wasm_u8x16_le(pb, pc);
  return wasm_v128_bitselect(a, wasm_v128_bitselect(b, c, take_b), take_a);
}

/* floor((a + b) / 2) per byte (the Average filter's predictor). */
INLINE v128_t average(v128_t a, v128_t b) {
  return wasm_i8x16_sub(wasm_u8x16_avgr(a, b), wasm_v128_and(wasm_v128_xor(a, b), wasm_i8x16_splat(1)));
}

/* The residuals of filter type f (0 None .. 4 Paeth) of x with neighbours a, b, c. */
INLINE v128_t residual(int f, v128_t x, v128_t a, v128_t b, v128_t c) {
  switch (f) {
    case 0: return x;
    case 1: return wasm_i8x16_sub(x, a);
    case 2: return wasm_i8x16_sub(x, b);
    case 3: return wasm_i8x16_sub(x, average(a, b));
    default: return wasm_i8x16_sub(x, paeth(a, b, c));
  }
}

/* Sum of |residual| (residual bytes read as signed) into 32-bit lanes. */
INLINE v128_t add_abs(v128_t sum, v128_t r) {
  v128_t magnitude = wasm_u8x16_min(r, wasm_i8x16_neg(r));
  return wasm_i32x4_add(sum, wasm_u32x4_extadd_pairwise_u16x8(wasm_u16x8_extadd_pairwise_u8x16(magnitude)));
}

INLINE uint32_t sum_lanes(v128_t v) {
  return wasm_i32x4_extract_lane(v, 0) + wasm_i32x4_extract_lane(v, 1) + wasm_i32x4_extract_lane(v, 2) +
         wasm_i32x4_extract_lane(v, 3);
}

/* Loads the neighbours of the 16 bytes at row + i: a and c are zero left of the first pixel. */
#define NEIGHBOURS(row, above, i, bpp)                                                                             \
  v128_t x = wasm_v128_load((row) + (i));                                                                          \
  v128_t b = wasm_v128_load((above) + (i));                                                                        \
  v128_t a = wasm_v128_load((row) + (i) - (bpp));                                                                  \
  v128_t c = wasm_v128_load((above) + (i) - (bpp));                                                                \
  if ((i) == 0) {                                                                                                  \
    v128_t keep = wasm_v128_load(ZEROS_THEN_ONES + 16 - (bpp));                                                    \
    a = wasm_v128_and(a, keep);                                                                                    \
    c = wasm_v128_and(c, keep);                                                                                    \
  }

/*
 * The filter type libpng's heuristic picks: the least sum of |residual| (signed bytes), the
 * earlier type on ties, over the vectors of the row whose index is a multiple of 2^shift (a
 * sample, so that choosing costs a fraction of filtering).
 */
INLINE int choose(const u8 *row, const u8 *above, int stride, int bpp, int shift) {
  v128_t sums[5];
  for (int f = 0; f < 5; f++) sums[f] = wasm_i64x2_const(0, 0);
  const int step = 16 << shift;
  for (int i = 0; i < stride; i += step) {
    NEIGHBOURS(row, above, i, bpp)
    v128_t valid = wasm_v128_load(ONES_THEN_ZEROS + 16 - (stride - i < 16 ? stride - i : 16));
    for (int f = 0; f < 5; f++) sums[f] = add_abs(sums[f], wasm_v128_and(residual(f, x, a, b, c), valid));
  }
  int best = 0;
  uint32_t least = sum_lanes(sums[0]);
  for (int f = 1; f < 5; f++) {
    uint32_t s = sum_lanes(sums[f]);
    if (s < least) {
      least = s;
      best = f;
    }
  }
  return best;
}

/* Writes the row filtered with type f at dst (16 bytes of slack after it); returns its zero bytes. */
INLINE int write_row(int f, const u8 *row, const u8 *above, u8 *dst, int stride, int bpp) {
  int zeros = 0;
  for (int i = 0; i < stride; i += 16) {
    NEIGHBOURS(row, above, i, bpp)
    v128_t r = residual(f, x, a, b, c);
    wasm_v128_store(dst + i, r);
    int n = stride - i < 16 ? stride - i : 16;
    zeros += __builtin_popcount(wasm_i8x16_bitmask(wasm_i8x16_eq(r, wasm_i64x2_const(0, 0))) & ((1 << n) - 1));
  }
  return zeros;
}

/* Swaps the bytes of each 16-bit sample (little-endian to PNG's big-endian), n bytes, in place. */
static void swap16(u8 *p, int n) {
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    v128_t x = wasm_v128_load(p + i);
    wasm_v128_store(p + i, wasm_i8x16_shuffle(x, x, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14));
  }
  for (; i + 1 < n; i += 2) {
    u8 t = p[i];
    p[i] = p[i + 1];
    p[i + 1] = t;
  }
}

/*
 * Filters `count` rows of `stride` bytes at `rows` (pixels of `bpp` bytes, 1..8) into `out`,
 * each as its filter type byte then its residuals, so count * (stride + 1) bytes. The row
 * above the first (zeros at the top of an image) is at rows - stride, already in PNG byte
 * order; `wide` first swaps the bytes of the `count` rows' 16-bit samples. `type` 0..4 filters
 * every row with that type; 5 chooses per row (see choose, sampling 2^shift). Returns the
 * number of zero residual bytes, or -1 for a bpp it has no loop for (having written nothing).
 * Reads up to 16 bytes before rows - stride and after the last row; writes up to 16 bytes
 * past the output.
 */
EXPORT(png_filter)
int png_filter(u8 *rows, u8 *out, int stride, int bpp, int count, int wide, int type, int shift) {
  if (bpp < 1 || bpp > 8 || type < 0 || type > 5) return -1;
  if (wide) swap16(rows, count * stride);
  int zeros = 0;
  for (int r = 0; r < count; r++) {
    const u8 *row = rows + r * stride;
    u8 *dst = out + r * (stride + 1);
    int f = type == 5 ? choose(row, row - stride, stride, bpp, shift) : type;
    dst[0] = (u8)f;
    zeros += write_row(f, row, row - stride, dst + 1, stride, bpp);
  }
  return zeros;
}

/*
 * Continues an Adler-32 (RFC 1950 section 8.2; start with 1) over n bytes at p. Per block of
 * 16 bytes x0..x15, s1 grows by their sum and s2 by 16 * s1 + 16 x0 + 15 x1 + ... + x15;
 * the sums are reduced modulo 65521 every 5552 bytes (zlib's NMAX) in 64-bit arithmetic.
 */
EXPORT(adler32)
uint32_t adler32(uint32_t adler, const u8 *p, int n) {
  const uint32_t BASE = 65521;
  uint64_t s1 = adler & 0xffff, s2 = adler >> 16;
  const v128_t high = wasm_i16x8_make(16, 15, 14, 13, 12, 11, 10, 9);
  const v128_t low = wasm_i16x8_make(8, 7, 6, 5, 4, 3, 2, 1);
  while (n >= 16) {
    int blocks = n / 16 < 5552 / 16 ? n / 16 : 5552 / 16;
    v128_t v1 = wasm_i64x2_const(0, 0), v2 = v1, prefix = v1;
    for (int k = 0; k < blocks; k++, p += 16) {
      v128_t x = wasm_v128_load(p);
      prefix = wasm_i32x4_add(prefix, v1);
      v1 = wasm_i32x4_add(v1, wasm_u32x4_extadd_pairwise_u16x8(wasm_u16x8_extadd_pairwise_u8x16(x)));
      v2 = wasm_i32x4_add(v2, wasm_i32x4_dot_i16x8(wasm_u16x8_extend_low_u8x16(x), high));
      v2 = wasm_i32x4_add(v2, wasm_i32x4_dot_i16x8(wasm_u16x8_extend_high_u8x16(x), low));
    }
    uint64_t sum_prefix = (uint64_t)(uint32_t)wasm_i32x4_extract_lane(prefix, 0) +
                          (uint32_t)wasm_i32x4_extract_lane(prefix, 1) + (uint32_t)wasm_i32x4_extract_lane(prefix, 2) +
                          (uint32_t)wasm_i32x4_extract_lane(prefix, 3);
    s2 += 16 * (uint64_t)blocks * s1 + 16 * sum_prefix + sum_lanes(v2);
    s1 += sum_lanes(v1);
    s1 %= BASE;
    s2 %= BASE;
    n -= blocks * 16;
  }
  for (; n > 0; n--, p++) {
    s1 += *p;
    s2 += s1;
  }
  return (uint32_t)((s2 % BASE) << 16 | (s1 % BASE));
}

/*
 * CRC-32 (ISO 3309, reflected polynomial 0xEDB88320) as PNG chunks need it (PNG spec 5.5),
 * slicing by 8: eight 256-entry tables, filled on the first call, consume 8 bytes per step.
 * Continues `crc` (0 to start) over n bytes at p.
 */
static uint32_t CRC_TABLES[8][256];

EXPORT(crc32)
uint32_t crc32(uint32_t crc, const u8 *p, int n) {
  if (CRC_TABLES[0][1] == 0) {
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
      CRC_TABLES[0][i] = c;
    }
    for (int t = 1; t < 8; t++)
      for (int i = 0; i < 256; i++) CRC_TABLES[t][i] = CRC_TABLES[0][CRC_TABLES[t - 1][i] & 0xff] ^ (CRC_TABLES[t - 1][i] >> 8);
  }
  uint32_t c = ~crc;
  for (; n >= 8; n -= 8, p += 8) {
    uint32_t lo, hi;
    __builtin_memcpy(&lo, p, 4);
    __builtin_memcpy(&hi, p + 4, 4);
    lo ^= c;
    c = CRC_TABLES[7][lo & 0xff] ^ CRC_TABLES[6][(lo >> 8) & 0xff] ^ CRC_TABLES[5][(lo >> 16) & 0xff] ^ CRC_TABLES[4][lo >> 24] ^
        CRC_TABLES[3][hi & 0xff] ^ CRC_TABLES[2][(hi >> 8) & 0xff] ^ CRC_TABLES[1][(hi >> 16) & 0xff] ^ CRC_TABLES[0][hi >> 24];
  }
  for (; n > 0; n--, p++) c = CRC_TABLES[0][(c ^ *p) & 0xff] ^ (c >> 8);
  return ~c;
}
