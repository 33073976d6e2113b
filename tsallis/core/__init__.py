"""`tsallis.core`: the one definition of the q-log family and the estimator weights.

`theory` (SymPy), `simulate` (NumPy) and `llm` (torch) all import these functions. Core imports only
NumPy; it recognises SymPy expressions and torch tensors without importing either.
"""

from tsallis.core.qlog import (
    amplification,
    attenuation,
    attenuation_from_logp,
    exp_q,
    log_amplification,
    log_attenuation,
    log_q,
    q_loss,
    q_loss_from_logp,
)
from tsallis.core.schedules import QSchedule
from tsallis.core.weights import (
    effective_sample_size,
    frac_zero_std,
    garl_monitor,
    garl_weights,
    grpo_advantages,
    leave_one_out_log_mean_w,
    log_mean_w,
    paft_weights,
)

__all__ = [
    "amplification", "attenuation", "attenuation_from_logp", "exp_q", "log_amplification",
    "log_attenuation", "log_q", "q_loss", "q_loss_from_logp", "effective_sample_size",
    "frac_zero_std", "garl_monitor", "garl_weights", "grpo_advantages", "leave_one_out_log_mean_w",
    "log_mean_w", "paft_weights", "QSchedule",
]
