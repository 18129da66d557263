"""What a task's checkpoint holds: the train state every task returns from `init_state`."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax


@flax.struct.dataclass
class TrainState:
    """What a checkpoint holds: step, trainable params, BatchNorm statistics, optimiser state."""

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
