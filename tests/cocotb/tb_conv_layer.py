"""cocotb bench of rtl/compute/conv_layer.sv: the generated stage of one IR layer against the golden
model (tb_common.layer_bench)."""

from __future__ import annotations

from typing import Any

import cocotb
from tb_common import layer_bench


@cocotb.test()
async def conv_layer_against_golden(dut: Any) -> None:
    await layer_bench(dut)
