"""Shared SymPy symbols with their assumptions: the glossary of the paper's notation."""

import sympy as sp

q = sp.Symbol("q", nonnegative=True)          # commitment, q in [0, 1]
u = sp.Symbol("u", positive=True)             # a probability, the argument of ln_q
P = sp.Symbol("P", positive=True)             # success probability p(y*|x)
p0 = sp.Symbol("p0", positive=True)           # initial success probability
delta = sp.Symbol("delta", positive=True)     # escape target, delta in (0, 1/2]
eps = sp.Symbol("epsilon", positive=True)     # label-noise rate, eps in (0, 1/2)
eta = sp.Symbol("eta", positive=True)         # noise contamination level
t = sp.Symbol("t", nonnegative=True)          # time of the gradient flow
M = sp.Symbol("M", positive=True, integer=True)  # number of sampled rationales
K = sp.Symbol("K", positive=True, integer=True)  # number of PAFT resamples
theta = sp.Symbol("theta", real=True)         # a scalar parameter
