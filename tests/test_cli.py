"""The command line: each error case prints one paragraph, no traceback, exit code 2."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from robustpo.agents.agent import load_agent

from .conftest import TINY


def run_cli(*args):
    proc = subprocess.run([sys.executable, "-m", "robustpo", *args], capture_output=True,
                          text=True, timeout=300, cwd=Path(__file__).resolve().parents[1])
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["train", "--env", "Hoper-v5"], "Unknown environment 'Hoper-v5'"),
    (["train", "--algo", "dqn"], "Unknown algorithm 'dqn'"),
    (["train", "--set", "policy_lr"], "--set expects key=value"),
    (["eval", "/nonexistent/run"], "Run directory /nonexistent/run does not exist"),
    (["train", "--resume", "/nonexistent/run"], "/nonexistent/run does not exist"),
    (["attack", "/nonexistent/run", "--pgd-steps", "50"], "applies to --target action"),
    (["select", "zoo/ppo-Hopper-v5"], "zoo/ppo-Hopper-v5/last holds no agent"),
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
                        "--preset", "defaults", "--no-progress", *sets)
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


@pytest.mark.parametrize(("args", "message"), [
    (["attack", "zoo/ppo-Hopper-v5", "--eps", "-1"], "eps must be a finite number >= 0"),
    (["attack", "zoo/ppo-Hopper-v5", "--eps", "nan"], "got nan"),
    (["attack", "zoo/ppo-Hopper-v5", "--eps", "inf"], "got inf"),
    (["attack", "zoo/ppo-Hopper-v5", "--episodes", "0"], "episodes must be an integer >= 1"),
    (["attack", "zoo/ppo-Hopper-v5", "--eps-sweep", "0,-0.1"], "got -0.1"),
    (["attack", "zoo/ppo-Hopper-v5", "--eps-sweep", "0,a"], "--eps-sweep expects numbers"),
    (["eval", "zoo/ppo-Hopper-v5", "--episodes", "-3"], "episodes must be an integer >= 1"),
    (["select", "zoo/td3-Hopper-v5", "--episodes", "0"], "episodes must be an integer >= 1"),
    (["eval", "zoo/ppo-Hopper-v5", "--attack", "mad", "--eps", "nan"], "got nan"),
    (["train", "--set", "kappa=0.3"], "Unknown config key 'kappa'"),
    (["train", "--algo", "barppo", "--env", "HalfCheetah-v4"], "No preset for barppo"),
    (["train", "--steps", "0"], "--steps must be >= 1"),
    (["attack", "zoo/ppo-Hopper-v5", "--attacks", ""], "--attacks names no attack"),
    (["attack", "zoo/ppo-Hopper-v5", "--attacks", ",,"], "--attacks names no attack"),
    (["attack", "zoo/ppo-Hopper-v5", "--env", "Walker2d-v5"], "--env applies to --sb3 models"),
    (["attack", "zoo/ppo-Hopper-v5", "--json", "README.md/a.json"], "Cannot write README.md/a"),
    (["eval", "zoo/ppo-Hopper-v5", "--csv", "README.md/e.csv"], "Cannot write README.md/e"),
    (["attack", "zoo/td3-Hopper-v5", "--target", "action", "--eps", "-0.1"],
     "half-ranges of the action space"),
    (["select", "/nonexistent/run"], "/nonexistent/run is not a directory"),
    (["train", "--out", "README.md"], "--out README.md is not a directory"),
    (["train", "--algo", "td3", "--env", "CartPole-v1", "--preset", "defaults", "--dry-run"],
     "CartPole-v1 has action space Discrete(2)"),
    (["compare", "zoo/ppo-Hopper-v5", "--markdown", "zoo/ppo-Hopper-v5/attack.json"],
     "is one of a run directory's own files"),
    (["report", "zoo/ppo-Hopper-v5", "--out", "zoo/ppo-Hopper-v5/config.yaml"],
     "is one of a run directory's own files"),
    (["landscape", "zoo/ppo-Hopper-v5", "--out", "zoo/ppo-Hopper-v5/agent"],
     "is one of a run directory's own files"),
    (["eval", "zoo/ppo-Hopper-v5", "--json", "zoo/ppo-Hopper-v5/agent.json"],
     "is one of a run directory's own files"),
    (["attack", "zoo/ppo-Hopper-v5", "--json", "zoo/ppo-Hopper-v5/config.yaml"],
     "is one of a run directory's own files"),
    (["eval", "zoo/ppo-Hopper-v5", "--csv", "zoo/ppo-Hopper-v5/metrics.csv"],
     "is one of a run directory's own files"),
    (["eval", "zoo/ppo-Hopper-v5", "--seed", "-1"], "--seed must be 0 or more"),
    (["attack", "zoo/ppo-Hopper-v5", "--attacks", "random", "--episodes", "2"],
     "holds a result this run would replace with less: the attacks critic, mad, paad, rs, "
     "sarl; 50 episodes per attack (this run: 2); the paper protocol's learned attacks"),
    (["attack", "zoo/ppo-Hopper-v5", "--eps", "0.2"], "eps 0.075 (this run: 0.2)"),
    (["eval", "zoo/ppo-Hopper-v5", "--episodes", "2"],
     "eval.json holds a result this run would replace with less: the attacks random; 50 "
     "episodes per attack (this run: 2)"),
    (["eval", "zoo/ppo-Hopper-v5", "--attack", "random", "--eps", "0.2"],
     "eps 0.075 (this run: 0.2)"),
    (["landscape", "zoo/ppo-Hopper-v5", "--seed", "-1"], "--seed >= 0"),
    (["toy", "--inits", "0"], "--inits, --iterations and --length must be >= 1"),
    (["toy", "--out", "README.md"], "README.md is a file, not a directory"),
    (["demo", "--episodes", "0"], "episodes must be an integer >= 1"),
    (["sweep", "zoo/ppo-Hopper-v5/agent.safetensors"], "is not valid YAML"),
    (["sweep", "zoo"], "The study file zoo is a directory"),
])
def test_bad_values_are_refused_before_any_work(args, message):
    code, out = run_cli(*args)
    assert code == 2, out
    assert message in " ".join(out.split())
    assert "Traceback" not in out


def test_attacking_an_agent_file_uses_the_agents_own_eps(tmp_path):
    zoo = Path(__file__).resolve().parents[1] / "zoo" / "ppo-Walker2d-v5"
    code, out = run_cli("attack", str(zoo / "agent.json"), "--attacks", "random",
                        "--episodes", "1", "--json", str(tmp_path / "a.json"))
    assert code == 0, out
    assert json.loads((tmp_path / "a.json").read_text())["eps"] == 0.05  # Walker2d's, not 0
    copy = tmp_path / "agent"  # the same agent outside its run directory, eps in its file
    agent = load_agent(zoo)
    agent.save(copy)
    code, out = run_cli("attack", str(copy / "agent.json"), "--attacks", "random",
                        "--episodes", "1", "--json", str(tmp_path / "b.json"))
    assert code == 0, out
    assert json.loads((tmp_path / "b.json").read_text())["eps"] == 0.05


def test_toy_writes_its_fractions_and_figures(tmp_path):
    code, out = run_cli("toy", "--out", str(tmp_path), "--inits", "10", "--iterations", "5",
                        "--r-safe", "0.3", "--r-safe", "0.5")
    assert code == 0, out
    record = json.loads((tmp_path / "toy.json").read_text())
    assert set(record["results"]) == {"0.3", "0.5"}
    assert set(record["results"]["0.3"]["fractions"]) >= {"spo", "arpo", "barpo"}
    assert (tmp_path / "toy.png").stat().st_size > 0 and (tmp_path / "toy.svg").is_file()
    code, out = run_cli("toy", "--out", str(tmp_path), "--r-safe", "0.95")
    assert code != 0 and "r_safe" in out and "Traceback" not in out


def test_attack_replaces_a_fuller_result_only_when_forced(tmp_path):
    zoo = Path(__file__).resolve().parents[1] / "zoo" / "ppo-Hopper-v5"
    run = tmp_path / "run"
    load_agent(zoo).save(run)
    full = (zoo / "attack.json").read_text()
    (run / "attack.json").write_text(full)
    code, out = run_cli("attack", str(run), "--attacks", "random", "--episodes", "1")
    assert code == 2 and "--force" in out
    assert (run / "attack.json").read_text() == full
    code, out = run_cli("attack", str(run), "--attacks", "random", "--episodes", "1",
                        "--force")
    assert code == 0, out
    assert list(json.loads((run / "attack.json").read_text())["attacks"]) == ["random"]


def test_train_refuses_a_directory_holding_an_agent(tmp_path):
    zoo = Path(__file__).resolve().parents[1] / "zoo" / "ppo-Hopper-v5"
    load_agent(zoo).save(tmp_path / "agent")
    before = (tmp_path / "agent" / "agent.safetensors").read_bytes()
    code, out = run_cli("train", "--out", str(tmp_path / "agent"), "--steps", "4096")
    assert code == 2 and "already holds agent.json" in " ".join(out.split())
    assert (tmp_path / "agent" / "agent.safetensors").read_bytes() == before
