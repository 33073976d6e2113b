"""All checks, in the paper's order, and the function that runs them.

`CHECKS` maps each id to the function that checks it (one dict literal, no registry); `run_checks`
runs a subset and turns an exception into a failed record, so one broken check never hides the others.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from tsallis.errors import InputError
from tsallis.theory import escape_time, estimators, gradient, loss_family, noise
from tsallis.theory.identity import Check, errored

CHECKS = {
    "eq1": loss_family.eq1,
    "eq3": loss_family.eq3,
    "A.1": loss_family.prop_a1,
    "B.1": loss_family.prop_b1,
    "3.1": loss_family.thm_3_1,
    "B.2": loss_family.cor_b2,
    "B.3": loss_family.cor_b3,
    "4.1": gradient.prop_4_1,
    "eq6": gradient.eq6,
    "5.1": escape_time.thm_5_1,
    "5.2": escape_time.thm_5_2,
    "C.1-sigmoid": escape_time.sigmoid_escape,
    "C.1": escape_time.prop_c1,
    "C.5": noise.noise_equilibrium_check,
    "C.2": noise.noise_fitting_time,
    "eq8": estimators.eq8,
    "6.1": estimators.thm_6_1,
    "6.1-v1": estimators.thm_6_1_v1,
    "6.1-v2": estimators.thm_6_1_v2,
    "6.2": estimators.prop_6_2,
    "D.2": estimators.prop_d2,
    "D.3": estimators.prop_d3,
    "D.4": estimators.prop_d4,
}


def run_checks(only: Iterable[str] | None = None) -> list[Check]:
    """Run the checks with the given ids (all, in the paper's order, when `only` is None).

    Raises:
        InputError (a ValueError): an id that is not in `CHECKS`, or one listed twice.

    Examples:
        >>> [c.id for c in run_checks(["eq1", "eq3"])]
        ['eq1', 'eq3']
        >>> run_checks(["eq1"])[0].verified
        True
    """
    if isinstance(only, str):
        raise InputError(f"only must be a list of check ids, e.g. [{only!r}]; got the string {only!r}")
    ids = list(CHECKS) if only is None else list(only)
    unknown = [i for i in ids if i not in CHECKS]
    if unknown:
        raise InputError(f"unknown check id(s) {unknown}; known: {', '.join(CHECKS)}")
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise InputError(f"check id(s) {twice} listed twice; give each once")
    records = []
    for id_ in ids:
        start = time.perf_counter()
        try:
            records.append(CHECKS[id_]())
        except Exception as err:  # a broken check is reported, not raised
            records.append(errored(id_, CHECKS[id_].__doc__.splitlines()[0], err, time.perf_counter() - start))
    return records
