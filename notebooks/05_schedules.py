# ---
# jupyter:
#   jupytext:
#     notebook_metadata_filter: kernelspec,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · Schedules for $q$: the speed-robustness front
#
# Notebooks 02 and 03 pull in opposite directions: $q = 1$ escapes a cold start in $\log(1/p_0)$ time but
# memorises label noise ($\tilde p^* = \epsilon$); $q = 0$ is robust to noise but needs time $\propto 1/p_0$.
# The paper suggests moving $q$ during training. Reading SFT-then-RL as a step schedule $q = 1 \to 0$ is its
# interpretation; it runs only constant $q$. `tsallis.core.QSchedule` implements constant, step (at a time or at a
# success level), linear, cosine and adaptive ($q = 1 - P$) schedules; `run_schedules` integrates the noisy
# gradient flow under each one on a cold start, and records the escape time (first $P\ge\delta$) and the
# contamination at the end of the horizon.

# %% tags=["parameters"]
from tsallis.notebook import quick_mode

QUICK = quick_mode()  # CI or TSALLIS_QUICK=1; the sizes here are small in either mode
MODEL = "softmax:10"
P0 = 1e-3
EPS = 0.1
T_END = 5000.0
DELTA = 0.5

# %%
import matplotlib.pyplot as plt

from tsallis.core import QSchedule
from tsallis.notebook import table
from tsallis.simulate.experiments import DEFAULT_SCHEDULES, run_schedules
from tsallis.simulate.plots import plot_q_schedules, plot_schedules

# %% [markdown]
# ## The schedules
#
# Each schedule is a `QSchedule` spec (plus our `adaptive_power` rule $q = 1 - P^4$, which keeps $q$ near 1 until
# $P$ is large). The step schedules switch $q = 1 \to 0$ at a time or when the success reaches a level.

# %%
for name, spec in DEFAULT_SCHEDULES:
    print(f"{name:16s} {spec}")
plot_q_schedules({"linear": QSchedule("linear"), "cosine": QSchedule("cosine"),
                  "step@t=200": QSchedule("step", switch_at=200.0)}, T_END)  # q_start = 1, q_end = 0
plt.show()

# %%
r = run_schedules(MODEL, p0=P0, eps=EPS, delta=DELTA, t_end=T_END)
plot_schedules(r)
plt.show()
table(r.records(), ["schedule", "t_escape", "contamination", "q_final", "pareto"])

# %% [markdown]
# **Reading the front.** The step $q = 1\to 0$ switched when $P$ reaches $\delta$ (or shortly after escape) is
# Pareto-optimal: it escapes as fast as constant $q = 1$ and ends as clean as $q = 0$ (cleaner, in fact: constant
# $q = 0$ spent its horizon escaping). Switching too early ($P = 0.1$) costs escape time; switching late costs only
# decay time. Linear and cosine anneals tied to a fixed horizon reach $q = 0$ only at $t_{\rm end}$ and end with
# about twice the contamination. The adaptive rules escape nearly as fast and end as clean, but are weakly
# dominated by the $P$-threshold step.

# %%
i = {n: k for k, n in enumerate(r.names)}
step, q0, q1 = i["step@P=0.5"], i["q=0"], i["q=1"]
print(f"step@P=0.5: escape {r.t_escape[step]:.3g} (q=1: {r.t_escape[q1]:.3g}, q=0: {r.t_escape[q0]:.3g}); "
      f"contamination {r.contamination[step]:.2e} (q=1: {r.contamination[q1]:.2e}, q=0: {r.contamination[q0]:.2e})")
assert r.pareto[step] and r.t_escape[step] <= 1.05 * r.t_escape[q1]
