"""Shared by the block benches: the job (JSON in $QFLOW_TB) and the stall patterns."""

from __future__ import annotations

import json
import os
from typing import Any

# (valid_prob, ready_prob): free-running first (throughput is checked there), then random
# stalls on the input, the output and both
STALLS = ((1.0, 1.0), (0.5, 1.0), (1.0, 0.4), (0.6, 0.6))


def job() -> dict[str, Any]:
    return json.loads(os.environ["QFLOW_TB"])
