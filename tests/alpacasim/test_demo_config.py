"""`make run` in demo mode: alpacasim's demo accounts are exactly secrets.example.yml's."""
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_demo_sim_accounts_match_the_example_secrets():
    example = yaml.safe_load((ROOT / "secrets.example.yml").read_text())["accounts"]
    sim = yaml.safe_load((ROOT / "alpacasim" / "demo.yml").read_text())["accounts"]

    configured = {(a["api_key"], a["secret_key"], a["paper_trading"]) for a in example.values()}
    simulated = {(a["api_key"], a["secret_key"], a["paper"]) for a in sim}
    assert configured == simulated
    assert any(not paper for _, _, paper in simulated), "demo needs a live-style account for detection"
