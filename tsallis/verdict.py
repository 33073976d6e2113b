"""The record a claim's verdict function returns (shared by `theory`, `simulate`, `llm` and `reproduce`).

Each claim of the paper that `tsallis reproduce` judges has one function `verdict(result) -> Verdict` in the
library, next to the study that produces its evidence. The function derives the outcome from the measured
result by a stated criterion; nothing sets an outcome by hand. The criterion (regime, thresholds, standard
errors) is data on the record, so the report prints it beside the outcome.

No dependencies beyond the standard library: every subpackage may import this module.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

HOLDS = "holds"
BOUND = "holds as a bound (not tight)"
ASSUMPTION = "holds with an extra assumption"
FAILS = "does not hold"
UNTESTABLE = "not testable here"

OUTCOMES = (HOLDS, BOUND, ASSUMPTION, FAILS, UNTESTABLE)
"""Every outcome a verdict may have, strongest first."""

_WEAKNESS = {FAILS: 0, ASSUMPTION: 1, BOUND: 2, HOLDS: 3}


@dataclass(frozen=True)
class Verdict:
    """One judged claim.

    Attributes:
        claim: the claim id (`tsallis.reproduce.claims.CLAIMS`).
        outcome: one of `OUTCOMES`.
        criterion: the rule that decided it, in words, with its thresholds (printed beside the outcome).
        evidence: what was measured, in one line, with the numbers the criterion read.
        regime: where the evidence was measured (model, p0 or M*P range, sizes), in words.
        assumption: the assumption the evidence needed beyond the paper's; required exactly when the outcome
            is `ASSUMPTION`.
        data: the criterion's numbers (thresholds, estimates, standard errors), JSON-serialisable.
    """

    claim: str
    outcome: str
    criterion: str
    evidence: str
    regime: str = ""
    assumption: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.outcome not in OUTCOMES:
            raise ValueError(f"verdict outcome must be one of {OUTCOMES}; got {self.outcome!r}")
        if (self.outcome == ASSUMPTION) != bool(self.assumption):
            raise ValueError(f"claim {self.claim!r}: outcome {self.outcome!r} "
                             + ("needs the assumption's text" if self.outcome == ASSUMPTION
                                else "must not carry an assumption (use ASSUMPTION)"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def weakest(outcomes: list[str]) -> str:
    """One outcome from several pieces of evidence for the same claim: the weakest tested one wins
    (`FAILS` < `ASSUMPTION` < `BOUND` < `HOLDS`); `UNTESTABLE` only when nothing was tested.

    >>> weakest([HOLDS, BOUND]), weakest([UNTESTABLE, HOLDS]), weakest([])
    ('holds as a bound (not tight)', 'holds', 'not testable here')
    """
    for o in outcomes:
        if o not in OUTCOMES:
            raise ValueError(f"unknown verdict outcome {o!r}")
    tested = [o for o in outcomes if o != UNTESTABLE]
    return min(tested, key=_WEAKNESS.__getitem__) if tested else UNTESTABLE
