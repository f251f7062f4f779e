"""The attack suite: worst case, JSON form, robustness curve and the `attack` command."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from robustpo.agents.agent import Agent, gaussian_agent
from robustpo.errors import UnknownNameError
from robustpo.results.suite import resolve_attack_names, robustness_curve, run_suite

ZOO = Path(__file__).resolve().parents[1] / "zoo" / "ppo-Hopper-v5"


def pendulum_agent() -> Agent:
    torch.manual_seed(0)
    agent = gaussian_agent("Pendulum-v1", 3, 1, np.array([-2.0]), np.array([2.0]), [8, 8])
    with torch.no_grad():
        agent.actor.mean_net.layers[-1].weight.mul_(300.0)
    agent.obs_normalizer.frozen = True
    return agent


def test_attack_names():
    assert resolve_attack_names("all") == [n for n in resolve_attack_names("all") if n != "none"]
    assert {"random", "critic", "mad"} <= set(resolve_attack_names("all"))
    assert resolve_attack_names("mad, random") == ["mad", "random"]
    with pytest.raises(UnknownNameError, match="Valid observation attacks are: all"):
        resolve_attack_names("random,pgd-9000")
    assert resolve_attack_names("all", "action") == [
        "random", "biggest", "min-q", "min-oa-q", "learned"]
    with pytest.raises(UnknownNameError, match="Unknown action attack 'mad'"):
        resolve_attack_names("mad", "action")


def test_suite_worst_and_json_form():
    suite = run_suite(pendulum_agent(), ["random", "mad"], eps=0.3, episodes=3)
    means = {n: r.stats.mean for n, r in suite.attacks.items()}
    assert suite.worst == (min(means, key=means.get), min(means.values()))
    payload = json.loads(json.dumps(suite.to_json()))
    assert set(payload) == {"env", "eps", "episodes", "natural", "attacks", "worst", "flags",
                            "protocol", "target"}
    assert payload["target"] == "observation"
    assert payload["protocol"] == "quick" and payload["worst"]["upper_bound"]
    assert payload["eps"] == 0.3 and payload["episodes"] == 3
    assert set(payload["attacks"]) == {"random", "mad"}
    assert set(payload["natural"]) >= {"mean", "std", "ci95"}
    assert payload["worst"]["mean"] == min(means.values())


def test_robustness_curve_starts_at_the_natural_return():
    curve = robustness_curve(pendulum_agent(), ["mad"], [0.0, 0.5], episodes=2)
    assert [s.eps for s in curve] == [0.0, 0.5]
    assert curve[0].attacks["mad"].returns == pytest.approx(curve[0].natural.returns)
    assert curve[1].natural is curve[0].natural


def test_attack_command_on_the_zoo_agent(tmp_path):
    out = tmp_path / "a.json"
    proc = subprocess.run(
        [sys.executable, "-m", "robustpo", "attack", str(ZOO), "--attacks",
         "random,mad", "--episodes", "2", "--json", str(out)],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(out.read_text())
    assert payload["env"] == "Hopper-v5" and payload["eps"] == 0.075
    assert payload["natural"]["mean"] > 3000  # the zoo agent hops to the time limit
    assert payload["attacks"]["mad"]["mean"] < payload["natural"]["mean"]
    assert "worst" in proc.stdout
