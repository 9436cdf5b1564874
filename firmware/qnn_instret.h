/* Retired-instruction counter for measurements (RISC-V instret; 0 elsewhere). */
#ifndef QNN_INSTRET_H
#define QNN_INSTRET_H

#include <stdint.h>

static inline uint32_t qnn_instret(void)
{
#if defined(__riscv)
    uint32_t v;
    /* csrr v, instret, encoded so that -march=rv32imc (without _zicsr) assembles it */
    __asm__ volatile(".insn i 0x73, 2, %0, x0, -1022" : "=r"(v));
    return v;
#else
    return 0;
#endif
}

#endif /* QNN_INSTRET_H */
