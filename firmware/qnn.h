/* qnn: integer kernels for quantized dense layers on microcontrollers (C99, no heap).
 *
 * A layer computes acc[o] = sum_i W[o][i] * x[i] in int32, then stores either acc itself
 * (the last layer), base + step * #{j : acc[o] >= T[o][j]} (thresholds sorted per row), or
 * its fixed-point requantization (qnn_requant_t: rounding half to even, or TFLite's).
 * Storage between layers: a BIPOLAR activation that feeds qnn_dense_xnor (BIPOLAR
 * weights), the only kernel reading bits, as bits (1 = +1, 32 per word, LSB first, unused
 * tail bits 0); every other activation as int8 (the other kernels' input), BIPOLAR as -1/+1
 * and UINT8 values shifted down by 128 so that they fit (the generator folds the shift back
 * into `bias` and `w_offset`; a half_even requantization's into its own int64 bias).
 */
#ifndef QNN_H
#define QNN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* how a layer stores its results */
enum {
    QNN_OUT_ACC = 0,  /* int32 accumulators (the last layer) */
    QNN_OUT_INT8 = 1, /* int8 codes: base + step * count (BIPOLAR: -1/+1) */
    QNN_OUT_BITS = 2, /* BIPOLAR codes as bits, for qnn_dense_xnor: 1 where
                         base + step * count > 0 */
    QNN_OUT_REQUANT = 3 /* int8 codes by the layer's requantization (qnn_requant_t) */
};

/* A layer's requantization, in one of two roundings (flow/ir/requant.py), bit for bit
 * flow/golden/requant.py:
 * QNN_ROUND_TFLITE, CMSIS-NN's convention: clamp(out_offset + qnn_requantize(acc + bias[o],
 *   multiplier[o], shift[o]), act_min, act_max), the int32 bias the layer's `bias`;
 * QNN_ROUND_HALF_EVEN: clamp(out_offset + RHE((acc * multiplier[o] + B[o]) / 2^shift[o]),
 *   act_min, act_max), RHE rounding half to even, B the IR's int64 bias in the product's
 *   units with the storage corrections folded in (B + d * multiplier for a correction d of
 *   the accumulator), stored as bias[o] = B[o] + 2^(shift[o] - 1) (qnn_requantize_half_even);
 *   the layer's `bias` is NULL.
 * Offset and bounds are as stored (UINT8 codes minus 128). All zero for other output
 * kinds. Per channel: tflite 4 + 1 bytes (and 4 of the layer's bias), half_even 4 + 1 + 8. */
enum { QNN_ROUND_TFLITE = 0, QNN_ROUND_HALF_EVEN = 1 };
typedef struct {
    const int32_t *multiplier; /* [out]: tflite: in [2^30, 2^31) or 0; half_even: [0, 2^31) */
    const int8_t *shift;       /* [out]: tflite: -31 .. 30, > 0 shifts left before the
                                  multiply; half_even: the right shift, 1 .. 62 */
    const int64_t *bias;       /* [out]: half_even's B + 2^(shift - 1); NULL for tflite */
    int32_t out_offset;        /* the output zero point */
    int32_t act_min, act_max;  /* the clamp */
    uint8_t rounding;          /* QNN_ROUND_* */
} qnn_requant_t;

/* 32 x 32 -> 64-bit products. Xtensa cores without a high multiply (the ESP8266's lx106,
 * call0 ABI) would call libgcc's __muldi3, which its libgcc lacks: there the product is
 * built from four 16 x 16 multiplies (QNN_MUL64_PORTABLE, which a build may also set). */
#ifndef QNN_MUL64_PORTABLE
#if defined(__XTENSA__) && defined(__XTENSA_CALL0_ABI__)
#define QNN_MUL64_PORTABLE 1
#else
#define QNN_MUL64_PORTABLE 0
#endif
#endif

#if QNN_MUL64_PORTABLE
static inline uint64_t qnn_umul64(uint32_t a, uint32_t b)
{
    const uint32_t a0 = a & 0xFFFFu, a1 = a >> 16, b0 = b & 0xFFFFu, b1 = b >> 16;
    const uint32_t ll = a0 * b0, lh = a0 * b1, hl = a1 * b0;
    const uint32_t mid = (ll >> 16) + (lh & 0xFFFFu) + (hl & 0xFFFFu); /* < 3 * 2^16 */
    const uint32_t high = a1 * b1 + (lh >> 16) + (hl >> 16) + (mid >> 16);
    return ((uint64_t)high << 32) | (mid << 16) | (ll & 0xFFFFu);
}
#endif

/* signed x unsigned (RV32: mul and mulhsu); the conversion to int64_t wraps (GCC, Clang) */
static inline int64_t qnn_mul_su(int32_t a, uint32_t b)
{
#if QNN_MUL64_PORTABLE
    return (int64_t)(qnn_umul64((uint32_t)a, b) - ((uint64_t)(a < 0 ? b : 0u) << 32));
#else
    return (int64_t)a * (int64_t)b;
#endif
}

/* signed x signed (RV32: mul and mulh) */
static inline int64_t qnn_mul_ss(int32_t a, int32_t b)
{
#if QNN_MUL64_PORTABLE
    return (int64_t)((uint64_t)qnn_mul_su(a, (uint32_t)b)
                     - ((uint64_t)(b < 0 ? (uint32_t)a : 0u) << 32));
#else
    return (int64_t)a * b;
#endif
}

/* RDBPOT(x, e): x / 2^e rounded to nearest, ties away from zero (e in 0 .. 31) */
static inline int32_t qnn_rounding_divide_by_pot(int32_t x, int32_t e)
{
    const int32_t mask = (int32_t)(((uint32_t)1 << e) - 1u);
    return (x >> e) + ((x & mask) > (mask >> 1) + (x < 0));
}

/* TFLite's MultiplyByQuantizedMultiplier, double rounding (CMSIS-NN's arm_nn_requantize,
 * ESP-NN): RDBPOT(SRDHM(x * 2^max(shift, 0), multiplier), max(-shift, 0)), bit for bit
 * flow/golden/requant.py. x * 2^max(shift, 0) must fit int32 (the IR checks it).
 * SRDHM(a, b) = (a * b + nudge) / 2^31 toward zero, nudge 2^30 or 1 - 2^30 by the
 * product's sign, is floor((a * b + 2^30) / 2^31) for either sign (for a * b < 0 the
 * truncation is a ceiling: ceil((p + 1 - 2^30) / 2^31) = floor((p + 2^30) / 2^31)): one
 * 64-bit add and arithmetic shift, no 64-bit division; it saturates only for
 * a = b = INT32_MIN. */
static inline int32_t qnn_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t a = shift > 0 ? (int32_t)((uint32_t)x << shift) : x;
    int32_t high;
    if (a == INT32_MIN && multiplier == INT32_MIN)
        high = INT32_MAX;
    else
        high = (int32_t)((qnn_mul_ss(a, multiplier) + ((int64_t)1 << 30)) >> 31);
    return qnn_rounding_divide_by_pot(high, shift > 0 ? 0 : -shift);
}

/* The half_even requantization (qnn_requant_t) of u = acc * m + B + 2^(n - 1), with n in
 * 1 .. 62, m in [0, 2^31) and |acc * m + B| < 2^62: RHE((u - 2^(n - 1)) / 2^n) =
 * (u - ((u >> n) & 1)) >> n. Off a tie u and u - 1 lie in one step; at a tie (u a multiple
 * of 2^n) the 1 taken off an odd u >> n rounds down to the even neighbour. */

/* n = 32 + e >= 32 (factors below 1/2): the high word shifted, |result| < 3 * 2^29; u - 1
 * borrows from the high word only where the low word is 0 */
static inline int32_t qnn_half_even_high(int64_t u, int32_t e)
{
    const int32_t top = (int32_t)(u >> 32), y = top >> e;
    return (uint32_t)u == 0u && (y & 1) ? (top - 1) >> e : y;
}

static inline int32_t qnn_clamp(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* clamp(offset + RHE((acc * m + B) / 2^n), lo, hi), given c = B + 2^(n - 1) */
static inline int32_t qnn_requantize_half_even(int32_t acc, int32_t m, int64_t c, int32_t n,
                                               int32_t offset, int32_t lo, int32_t hi)
{
    const int64_t u = qnn_mul_ss(acc, m) + c;
    int64_t y;
    if (n >= 32)
        return qnn_clamp(offset + qnn_half_even_high(u, n - 32), lo, hi);
    y = ((u - ((u >> n) & 1)) >> n) + offset; /* may leave int32: clamped in 64 bits */
    return y < lo ? lo : y > hi ? hi : (int32_t)y;
}

/* One dense layer; the generator emits these as const (flash) objects. */
typedef struct {
    const void *weights;       /* layout per kernel, see the kernel's comment */
    const int32_t *thresholds; /* [out][count], NULL for QNN_OUT_ACC */
    const int32_t *bias;       /* added to acc[o] before thresholds/output, or NULL */
    int32_t w_offset;          /* acc += w_offset * sum(x): weights stored minus w_offset */
    uint16_t in;
    uint16_t out;
    uint16_t count; /* thresholds per output channel */
    int16_t base;
    int16_t step;
    uint8_t out_kind;    /* QNN_OUT_* */
    uint8_t weight_bits; /* 2 or 4 for qnn_dense_packed */
    uint8_t in_bits;     /* bits of an input as stored (qnn_dense_bipolar_weights):
                            BIPOLAR: 1 as bits, 2 as int8 -1/+1 */
    uint8_t in_signed;   /* 1: the inputs' top bit weighs -2^(in_bits - 1) */
    qnn_requant_t requant; /* QNN_OUT_REQUANT */
} qnn_dense_t;

/* BIPOLAR x BIPOLAR: x and weights are bits; weights [out][ceil(in/32)] words, tail bits 0.
 * Thresholds are on the XNOR popcount p = in - popcount(x ^ w); the last layer outputs
 * acc = 2p - in. */
void qnn_dense_xnor(const qnn_dense_t *layer, const uint32_t *x, void *y);

/* BIPOLAR x BIPOLAR with bits out and one threshold per channel (base <= 0 < base + step),
 * bit-sliced over blocks of 32 channels (see the kernel's comment). weights: per block,
 * per input word j, 32 planes: bit r of plane b is W[32 * block + r][32 j + b] (1 = +1;
 * 0 past `out` or `in`). thresholds: per block, qnn_sliced_planes(in, 0) planes of
 * T_r = clip(t_r, 0, in + 1), t_r the threshold on the XNOR popcount p = in - mismatches;
 * output bit r = (mismatches_r + T_r <= in). */
void qnn_dense_xnor_sliced(const qnn_dense_t *layer, const uint32_t *x, void *y);

/* BIPOLAR weights (bits, as above) x multi-bit int8 inputs: acc = 2 * sum_{w=+1} x - sum x,
 * bit-serial; scratch holds the inputs' bit planes: in_bits * ceil(in/32) words. */
void qnn_dense_bipolar_weights(const qnn_dense_t *layer, const int8_t *x, void *y,
                               uint32_t *scratch);

/* BIPOLAR weights x int8 inputs by table lookup (see the kernel's comment): per group of 4
 * inputs, 16 partial sums in scratch. weights: per row one byte per group, 2 * s with bit k
 * of s set where w[o][4g + k] = +1 (missing inputs of the last group: 0); rows of more than
 * 8 groups padded with 0 bytes to a multiple of 4 groups. scratch: 32 bytes per group of
 * the padded row. */
#define QNN_TABLE_ENTRIES 16
void qnn_dense_bipolar_table(const qnn_dense_t *layer, const int8_t *x, void *y,
                             uint32_t *scratch);

/* int8 weights x int8 inputs, 1 byte per weight (the generator's choice only where
 * qnn_dense_int8_pairs' 2 bytes would not fit the flash). Rows in blocks of QNN_INT8_ROWS
 * interleaved by input (block b: w[8b+0][0], w[8b+1][0], ..., w[8b+7][0], w[8b+0][1], ...),
 * so that one input load feeds eight multiply-accumulates; the out % 8 last rows follow
 * row-major. */
#define QNN_INT8_ROWS 8
void qnn_dense_int8(const qnn_dense_t *layer, const int8_t *x, void *y);

/* int8 weights x int8 inputs, two MACs per 32-bit multiply (see the kernel's comment).
 * weights: int32 words A = -(w[o][2j] * 2^16 + w[o][2j+1]), an odd `in` padded with a zero
 * weight; rows in blocks of QNN_INT8_PAIR_ROWS interleaved by pair (block b: A[8b+0][0],
 * A[8b+1][0], ..., A[8b+7][0], A[8b+0][1], ...), the out % 8 last rows row-major. Exact
 * while every pair's a*c + b*d lies in [-2^15, 2^15) for the inputs' stored range, which
 * holds for any int8 weights and inputs; the generator checks it. scratch: ceil(in/2)
 * words (the packed input pairs). */
#define QNN_INT8_PAIR_ROWS 8
void qnn_dense_int8_pairs(const qnn_dense_t *layer, const int8_t *x, void *y,
                          uint32_t *scratch);

/* 2- or 4-bit weights (layer->weight_bits) x int8 inputs; each row packed LSB first into
 * ceil(in * bits / 8) bytes, each field w - w_offset (w_offset = -2^(bits-1)). */
void qnn_dense_packed(const qnn_dense_t *layer, const int8_t *x, void *y);

/* ---- convolution and pooling over channel-last frames (H, W, C) ------------------------
 * Frames are stored pixel after pixel: int8 codes (C bytes a pixel) or, for BIPOLAR codes
 * read as bits, ceil(C/32) words a pixel (channel c at bit c % 32 of word c / 32, tail bits
 * 0), so that every pixel starts a word. No kernel materializes im2col: each output
 * position gathers its one window (kh x kw pixels, in (ky, kx, c) order, the order of a
 * weight row) into scratch and runs the window's dense kernel over all output channels
 * (QNN_CONV_XNOR_SLICED reads the window's rows of words in place instead;
 * QNN_CONV_INT8_PAIRS packs each input row into pairs once and reads windows there).
 */

/* the geometry of a sliding window */
typedef struct {
    uint16_t in_h, in_w, in_c; /* input frame */
    uint16_t out_h, out_w;     /* output positions */
    uint8_t kh, kw, sh, sw;    /* kernel and stride */
    uint8_t pad_top, pad_left; /* bottom/right padding follows from the output size */
} qnn_window_t;

/* which kernel runs each window */
enum {
    QNN_CONV_XNOR = 0,            /* bits window; padded taps masked out, never +-1 */
    QNN_CONV_BIPOLAR_WEIGHTS = 1, /* int8 window, qnn_dense_bipolar_weights */
    QNN_CONV_INT8_PAIRS = 2,      /* int8 frame packed into pairs row by row, no window
                                     copy (qnn_conv_int8.c): weights as qnn_dense_int8_pairs'
                                     words, taps in (kx, ky) order, pairs within a pixel (C
                                     padded with zero weights to a multiple of 4), rows in
                                     blocks of 4 interleaved by pair (rows padded with zero
                                     weights to a multiple of 4) */
    QNN_CONV_INT8 = 3,            /* int8 window, qnn_dense_int8 */
    QNN_CONV_PACKED = 4,          /* int8 window, qnn_dense_packed */
    QNN_CONV_DEPTHWISE = 5,       /* int8 window, int16 weights [C][kh * kw] */
    QNN_CONV_BIPOLAR_TABLE = 6,   /* int8 window, qnn_dense_bipolar_table */
    QNN_CONV_XNOR_SLICED = 7      /* bits, bit-sliced as qnn_dense_xnor_sliced, no window
                                     copy: the real taps' words are read in place; weights
                                     as that kernel's over (ky, kx, channel word) of the
                                     window, thresholds T_r = clip(t_r + in, 0, 2 in + 1)
                                     on the accumulator (qnn_sliced_planes(in, 1) planes):
                                     bit r = (2 mismatches_r + T_r <= real taps + in) */
};

/* One convolution: `dense` is the layer of one window (in = kh * kw * C_in / group taps,
 * out = C_out channels, weights laid out as that dense kernel's), run at every position. */
typedef struct {
    qnn_dense_t dense;
    qnn_window_t win;
    int8_t pad_code; /* a padded tap's value as stored (int8 windows; bits windows mask) */
    uint8_t kernel;  /* QNN_CONV_* */
} qnn_conv_t;

/* scratch: the window (int8: kh*kw*C bytes; bits: twice kh*kw*ceil(C/32) words, the
 * second half the mask of padded taps), word-aligned, then the window kernel's scratch;
 * QNN_CONV_BIPOLAR_TABLE runs two positions per pass: two int8 windows, then the kernel's
 * scratch for each. QNN_CONV_INT8_PAIRS (qnn_conv_int8.c), in words, with
 * lanes = 4 * ceil(out_w / 4) and pixels = sw * ceil(((lanes - 1) * sw + kw) / sw): a ring of
 * 2 * kh input rows of 2 * ceil(C / 4) * pixels pair words, kh * pixels pixel sums where
 * w_offset != 0, kw run offsets, then 6 * lanes (a block's accumulators, bits and starts). */
void qnn_conv2d(const qnn_conv_t *layer, const void *x, void *y, uint32_t *scratch);

/* Max pool on codes: int8 frames (max) or bit frames (BIPOLAR: OR of the bits); padded
 * taps are skipped (they never win). */
typedef struct {
    qnn_window_t win;
    uint8_t bits; /* 1: bit frames */
} qnn_pool_t;
void qnn_maxpool(const qnn_pool_t *layer, const void *x, void *y);

/* Average pool on int8 codes: y = clamp(sum of the window's codes / 2^shift) (padded taps
 * add 0), the division rounding half to even or down, a negative shift a product by
 * 2^-shift; codes are stored minus an offset (128 for UINT8, else 0). */
typedef struct {
    qnn_window_t win;
    int8_t shift;
    uint8_t half_even; /* 1: round half to even, 0: floor */
    int16_t lo, hi;    /* output code range */
    int16_t in_offset, out_offset;
} qnn_avgpool_t;
void qnn_avgpool(const qnn_avgpool_t *layer, const int8_t *x, int8_t *y);

/* The join of a residual network: two int8 code frames of `pixels` pixels x act.out
 * channels (each code stored minus its offset, see qnn_uint8_to_storage) added element by
 * element, acc = wa * a + wb * b, then stored by channel as a dense layer's outputs: act
 * holds the activation alone (weights NULL, in 0, out the channels, out_kind QNN_OUT_INT8
 * or QNN_OUT_REQUANT), the offsets' wa * off_a + wb * off_b folded into its thresholds or
 * bias. */
typedef struct {
    qnn_dense_t act;
    int32_t wa, wb;
    uint32_t pixels;
} qnn_add_t;
void qnn_add(const qnn_add_t *layer, const int8_t *a, const int8_t *b, int8_t *y);

/* BIPOLAR codes of `pixels` pixels x `channels` -> a bit frame (ceil(channels/32) words a
 * pixel) */
void qnn_pack_bipolar_frame(const int8_t *codes, uint32_t pixels, uint32_t channels,
                            uint32_t *bits);

/* number of t[j] <= acc among n sorted thresholds: a linear scan below
 * QNN_LINEAR_THRESHOLDS thresholds, a binary search from there on (measured) */
#define QNN_LINEAR_THRESHOLDS 16
uint32_t qnn_threshold_count(const int32_t *t, uint32_t n, int32_t acc);
uint32_t qnn_threshold_count_linear(const int32_t *t, uint32_t n, int32_t acc);
uint32_t qnn_threshold_count_binary(const int32_t *t, uint32_t n, int32_t acc);

/* BIPOLAR codes (-1/+1 as int8) -> bits, tail bits of the last word 0 */
void qnn_pack_bipolar(const int8_t *codes, uint32_t n, uint32_t *bits);

/* UINT8 codes -> int8 storage (code - 128) */
void qnn_uint8_to_storage(const uint8_t *codes, uint32_t n, int8_t *out);

/* codes stored in int8 (each the code minus `offset`, see qnn_uint8_to_storage) -> int32:
   the outputs of a model whose last layer ends in a quantizer */
void qnn_codes_to_i32(const int8_t *codes, uint32_t n, int32_t offset, int32_t *out);

/* index of the first largest value */
uint32_t qnn_argmax_i32(const int32_t *v, uint32_t n);

#ifdef __cplusplus
}
#endif

#endif /* QNN_H */
