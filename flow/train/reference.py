"""Brevitas' forward on a build's checkpoint as one of verify's references
(flow.reference.REFERENCES): the trained module itself, rebuilt from config.yaml and
checkpoint.pt, run on the same inputs as golden."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from flow.ir import Model


def brevitas_forward(build_dir: Path, model: Model, x: np.ndarray
                     ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Brevitas' forward on the checkpoint: float outputs, and its integers as the IR sees
    them: the codes of every activation quantizer (input first), then the last layer's
    accumulators recovered from its exact float output. Frames (N, C, H, W) are read in the
    IR's channel-last order."""
    import torch
    from brevitas.nn import QuantIdentity, QuantLinear

    from flow.train.trainer import load_trained

    net, _, _ = load_trained(build_dir)
    acts = [m for m in net.modules() if isinstance(m, QuantIdentity)]
    last = [m for m in net.modules() if isinstance(m, QuantLinear)][-1]
    seen: dict[torch.nn.Module, torch.Tensor] = {}
    hooks = [m.register_forward_hook(lambda m, i, o: seen.__setitem__(m, o))
             for m in (*acts, last)]
    with torch.no_grad():
        out = net(torch.from_numpy(x)).numpy().reshape(len(x), -1)
    for h in hooks:
        h.remove()
    ints = []
    for m in acts:
        q = m.act_quant
        scale, zp = q.scale().detach().numpy(), q.zero_point().detach().numpy()
        codes = np.round(seen[m].numpy() / scale + zp)
        ints.append(codes.transpose(0, 2, 3, 1) if codes.ndim == 4 else codes)
    stage = model.output
    ints.append(np.round(seen[last].numpy().astype(np.float64) / stage.acc_scale) + stage.acc_offset)
    return out, [a.reshape(len(x), -1).astype(np.int64) for a in ints]
