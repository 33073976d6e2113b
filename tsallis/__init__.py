"""tsallis: the Tsallis loss continuum J_Q for training reasoning models.

Subpackages: `tsallis.core` (the q-log family and estimator weights), `tsallis.theory` (SymPy checks of
the paper), `tsallis.simulate` (NumPy/SciPy dynamics) and `tsallis.llm` (torch training). Only `core` is
imported here; the others load on first use so that `import tsallis` never pulls in torch.
"""

from tsallis.core import (
    amplification,
    attenuation,
    effective_sample_size,
    garl_monitor,
    garl_weights,
    grpo_advantages,
    log_q,
    paft_weights,
    q_loss,
    q_loss_from_logp,
)

__version__ = "0.1.0"
__all__ = [
    "amplification", "attenuation", "effective_sample_size", "garl_monitor", "garl_weights",
    "grpo_advantages", "log_q", "paft_weights", "q_loss", "q_loss_from_logp",
]
