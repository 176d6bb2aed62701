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
