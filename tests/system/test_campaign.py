"""A short seeded sample of the randomized fault campaign (tests/campaign.py; the long one
is `python -m tests.campaign --runs 1000`): power cuts at random moments, bytes and calls,
network faults below TLS, 5xx and 429 bursts, paper outs and broker restarts, with push in
half the runs, nothing lost, nothing printed twice and the agent serving again after each."""
from tests.campaign import campaign

RUNS, SEED = 20, 2026


def test_a_seeded_sample_of_the_fault_campaign_loses_nothing_and_prints_nothing_twice():
    said = []
    summary = campaign(RUNS, SEED, say=said.append)
    assert summary["failed"] == 0, "\n".join(said)
    assert summary["lost"] == summary["twice"] == summary["stuck"] == 0
    assert summary["kills"] >= 3  # the sample does cut the power
    assert sum(summary["outcomes"].values()) >= RUNS
    assert any(f.startswith("push ") for f in summary["faults"])  # both ways of hearing of jobs
    assert any(f.startswith("poll ") for f in summary["faults"])
