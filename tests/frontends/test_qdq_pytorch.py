"""PyTorch's own quantized export (eager-mode post-training quantization with fbgemm,
torch.onnx.export): Q, a Cast to the codes' type, DQ; biases' zero points made by
ConstantOfShape and Cast; a ReLU between two equal quantizers. It compiles as it is and
equals onnxruntime on the file as given."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flow import golden
from flow.data import load_digits
from flow.frontends import load
from flow.lower import lower
from flow.reference import onnxruntime_outputs


def pytorch_quantized(folder: Path) -> Path:
    import torch
    from torch.ao.quantization import DeQuantStub, QuantStub, convert, get_default_qconfig, prepare

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.quant, self.dequant = QuantStub(), DeQuantStub()
            self.fc1, self.relu = torch.nn.Linear(64, 32), torch.nn.ReLU()
            self.fc2 = torch.nn.Linear(32, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.dequant(self.fc2(self.relu(self.fc1(self.quant(x)))))

    torch.manual_seed(0)
    net = Net().eval()
    net.qconfig = get_default_qconfig("fbgemm")  # type: ignore[assignment]
    prepared = prepare(net)
    prepared(torch.from_numpy(load_digits().x_train[:128].reshape(-1, 64)))
    path = folder / "ptq.onnx"
    torch.onnx.export(convert(prepared), torch.zeros(1, 64), str(path), dynamo=False,
                      input_names=["x"], opset_version=13)
    return path


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
def test_pytorch_quantized_export_equals_onnxruntime(tmp_path: Path) -> None:
    path = pytorch_quantized(tmp_path)
    normalized, frontend = load(path)
    assert frontend.NAME == "qdq"
    ops = [n.op_type for n in normalized.graph.node]
    assert "Cast" not in ops and "ConstantOfShape" not in ops
    assert ops.count("Relu") == 1 and ops.count("Gemm") == 2
    model = lower(path)
    x = load_digits().x_test[:200].reshape(-1, 64)
    ours = golden.run(model, x).reshape(len(x), -1)
    assert np.array_equal(ours, onnxruntime_outputs(path, x))
