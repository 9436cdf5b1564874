"""qflow: quantized neural networks from Brevitas QAT to RTL, HLS C++ and MCU firmware."""

__version__ = "0.1.0"
