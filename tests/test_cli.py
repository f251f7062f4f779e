"""The command line: each error case prints one paragraph, no traceback, exit code 2."""

import json
import subprocess
import sys

import pytest

from .conftest import TINY


def run_cli(*args):
    proc = subprocess.run([sys.executable, "-m", "robustpo", *args], capture_output=True,
                          text=True, timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["train", "--env", "Hoper-v5"], "Unknown environment 'Hoper-v5'"),
    (["train", "--algo", "dqn"], "Unknown algorithm 'dqn'"),
    (["train", "--set", "policy_lr"], "--set expects key=value"),
    (["eval", "/nonexistent/run"], "Run directory /nonexistent/run does not exist"),
    (["train", "--resume", "/nonexistent/run"], "is not a robustpo run directory"),
])
def test_errors_are_one_paragraph_without_traceback(args, message):
    code, out = run_cli(*args)
    assert code == 2
    assert message in " ".join(out.split())
    assert "Traceback" not in out


def test_train_eval_and_corrupt_checkpoint_through_the_cli(tmp_path):
    run = tmp_path / "run"
    sets = [f"--set={k}={v}" for k, v in TINY.items()]
    code, out = run_cli("train", "--env", "Pendulum-v1", "--steps", "512", "--out", str(run),
                        "--no-progress", *sets)
    assert code == 0, out
    code, out = run_cli("eval", str(run), "--episodes", "3", "--attack", "random", "--eps",
                        "0.1", "--json", str(tmp_path / "e.json"))
    assert code == 0, out
    payload = json.loads((tmp_path / "e.json").read_text())
    assert [r["attack"] for r in payload["results"]] == ["none", "random"]
    assert payload["results"][1]["eps"] == 0.1 and payload["results"][1]["episodes"] == 3
    assert (run / "eval.csv").read_text().startswith("env,attack,eps")
    weights = run / "agent.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    code, out = run_cli("eval", str(run))
    assert code == 2 and "are corrupt" in out and "Traceback" not in out


def test_list_shows_every_kind():
    code, out = run_cli("list")
    assert code == 0
    for word in ("ppo", "Hopper-v5", "random", "ppo-Walker2d-v5"):
        assert word in out
