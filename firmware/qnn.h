/* qnn: integer kernels for quantized dense layers on microcontrollers (C99, no heap).
 *
 * A layer computes acc[o] = sum_i W[o][i] * x[i] in int32, then stores either acc itself
 * (the last layer) or base + step * #{j : acc[o] >= T[o][j]} (thresholds sorted per row).
 * Storage between layers: a BIPOLAR activation that feeds qnn_dense_xnor (BIPOLAR
 * weights), the only kernel reading bits, as bits (1 = +1, 32 per word, LSB first, unused
 * tail bits 0); every other activation as int8 (the other kernels' input), BIPOLAR as -1/+1
 * and UINT8 values shifted down by 128 so that they fit (the generator folds the shift back
 * into `bias` and `w_offset`).
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
    QNN_OUT_BITS = 2  /* BIPOLAR codes as bits, for qnn_dense_xnor: 1 where
                         base + step * count > 0 */
};

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
} qnn_dense_t;

/* BIPOLAR x BIPOLAR: x and weights are bits; weights [out][ceil(in/32)] words, tail bits 0.
 * Thresholds are on the XNOR popcount p = in - popcount(x ^ w); the last layer outputs
 * acc = 2p - in. */
void qnn_dense_xnor(const qnn_dense_t *layer, const uint32_t *x, void *y);

/* BIPOLAR weights (bits, as above) x multi-bit int8 inputs: acc = 2 * sum_{w=+1} x - sum x,
 * bit-serial; scratch holds the inputs' bit planes: in_bits * ceil(in/32) words. */
void qnn_dense_bipolar_weights(const qnn_dense_t *layer, const int8_t *x, void *y,
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

/* index of the first largest value */
uint32_t qnn_argmax_i32(const int32_t *v, uint32_t n);

#ifdef __cplusplus
}
#endif

#endif /* QNN_H */
