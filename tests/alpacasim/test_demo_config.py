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


def test_demo_session_is_always_open_and_the_real_hours_are_one_call_away(sim, trading):
    """The README tour must work at 02:00 on a Sunday: the demo clock is open until told otherwise."""
    assert yaml.safe_load((ROOT / "alpacasim" / "demo.yml").read_text())["market"]["clock"] == "open"
    sim.set_clock(now="2030-03-03T07:00:00Z")  # Sunday, 02:00 in New York
    assert trading.get_clock().is_open is True
    sim.set_clock(mode="real", now="2030-03-03T07:00:00Z")  # the real hours: closed on Sunday night
    assert trading.get_clock().is_open is False
    sim.reset()  # back to the demo's always-open session
    sim.set_clock(now="2030-03-03T07:00:00Z")
    assert trading.get_clock().is_open is True
