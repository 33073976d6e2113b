"""The reproduce stage of the claims added in issue 19: one verdict per new claim, each with its criterion; the
toy-transformer halves are read from the settle study's settle.json when it is there."""

import json

import numpy as np

from tsallis.reproduce.claims import CLAIMS
from tsallis.reproduce.stages import claims_stage
from tsallis.verdict import FAILS, HOLDS

NEW = ("consistency", "lr-momentum", "score-bounded", "critical-point", "intermediate-q", "mq-rescaling",
       "pass-at-k", "paft-curriculum", "collapse-monitor", "pathwise-collapse")


def test_claims_stage_judges_every_new_claim_and_reads_the_settle_study(tmp_path):
    (tmp_path / "llm_settle").mkdir()
    P = np.geomspace(1e-4, 0.9, 30).tolist()
    (tmp_path / "llm_settle" / "settle.json").write_text(json.dumps({
        "paths": [{"level": 8, "P": P, "score_sq": [1 / p for p in P], "g": P}],     # unbounded: must fail
        "intermediate_q": {"qs": [0, 0.5, 1], "scores": [0.1, 0.5, 0.3], "ses": [0.01] * 3}}))
    out = tmp_path / "claims"
    out.mkdir()
    r = claims_stage(out, True)
    claims = {e.claim for e in r.evidence}
    assert set(NEW) <= claims <= set(CLAIMS)
    assert all(e.verdict.criterion for e in r.evidence)
    llm = {e.claim: e.outcome for e in r.evidence if e.kind == "toy LLM" and e.claim != "pathwise-collapse"}
    assert llm == {"score-bounded": FAILS, "intermediate-q": HOLDS}
    assert (out / "claims_studies.json").exists()
