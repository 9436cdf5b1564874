"""HLS test helpers: a g++ harness against the templates, and the random CNNs the HLS tests
build (synthetic.random_cnn_model's specs)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from flow.backends import hls


def compile_and_run(tmp_path: Path, source: str, *flags: str,
                    vendor_include: Path | None = None) -> str:
    """g++ a harness against hls/ with the backend's flags (on Xilinx's ap_int.h /
    hls_stream.h from `vendor_include`, else the fallback types); its stdout."""
    src, exe = tmp_path / "harness.cpp", tmp_path / "harness"
    src.write_text(source)
    cmd = [hls.CXX, *hls.cxx_flags(vendor_include=vendor_include), *flags,
           f"-I{hls.template_dir()}", str(src), "-o", str(exe)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout


# (input (C, H, W), input type, layers) as synthetic.random_cnn_model takes them
CNNS: dict[str, tuple[tuple[int, int, int], str, list[dict[str, Any]]]] = {
    "cnv_w1a1": ((3, 12, 12), "UINT8", [
        {"conv": 8, "k": 3, "w": "BIPOLAR", "act": "BIPOLAR"},
        {"conv": 8, "k": 3, "w": "BIPOLAR", "act": "BIPOLAR"},
        {"pool": 2},
        {"conv": 16, "k": 3, "w": "BIPOLAR", "act": "BIPOLAR"},
        {"dense": 10, "w": "BIPOLAR"}]),
    "padded_mixed": ((3, 9, 8), "UINT4", [
        {"conv": 6, "k": 3, "pad": 1, "w": "INT3", "act": "UINT2"},
        {"pool": 2, "pad": 1},  # kernel == stride: the streaming pool, padded
        {"conv": 4, "k": 3, "stride": 2, "pad": 1, "w": "TERNARY", "act": "BIPOLAR"},
        {"dense": 5, "w": "INT4"}]),
    "bipolar_padded_dw": ((4, 7, 7), "BIPOLAR", [
        {"conv": 8, "k": 3, "pad": 1, "w": "BIPOLAR", "act": "BIPOLAR"},
        {"pool": 3, "stride": 2, "pad": 1},
        {"conv": 6, "k": 1, "w": "BIPOLAR", "act": "BIPOLAR"},
        {"conv": 6, "k": 3, "pad": 1, "depthwise": True, "w": "INT2", "act": "UINT2"},
        {"dense": 3, "w": "BIPOLAR"}]),
}
