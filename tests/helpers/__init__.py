"""Helpers shared by test files, by subject: `models` (Brevitas models to export and lower),
`onnx` (hand-built QONNX nodes), `reference` (naive and big-integer references), `backends`
(foldings, every backend against golden), `rtl`, `hls`, `firmware` (each backend's harness),
`data` (dataset files). Test files import these, never each other; shared fixtures live in
tests/conftest.py."""
