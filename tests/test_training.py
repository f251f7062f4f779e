import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

import robustpo.learners.ppo
from robustpo.agents.agent import load_agent
from robustpo.errors import BusyError, CheckpointError, NonFiniteError
from robustpo.io.checkpoint import load_checkpoint
from robustpo.io.locks import RUN_LOCK_FILE, exclusive
from robustpo.io.rundir import checkpoint_paths
from robustpo.training.driver import train
from robustpo.training.presets import config_from_dict

from .conftest import TINY, tensors_equal

STEPS = 2 * 64 * 8  # 8 iterations of the tiny config


def test_same_seed_same_parameters_and_different_seed_differs(tmp_path, tiny):
    a = train("ppo", "Hopper-v5", steps=STEPS, seed=5, out=tmp_path / "a", overrides=tiny,
              progress=False)
    b = train("ppo", "Hopper-v5", steps=STEPS, seed=5, out=tmp_path / "b", overrides=tiny,
              progress=False)
    c = train("ppo", "Hopper-v5", steps=STEPS, seed=6, out=tmp_path / "c", overrides=tiny,
              progress=False)
    assert tensors_equal(a.agent.tensors(), b.agent.tensors())
    assert not tensors_equal(a.agent.tensors(), c.agent.tensors())
    assert (tmp_path / "a" / "metrics.csv").read_text().count("\n") == 9  # header + 8 rows


def test_run_directory_records_config_versions_and_logs(tmp_path, tiny):
    train("ppo", "Hopper-v5", steps=STEPS, seed=0, out=tmp_path, overrides=tiny, progress=False)
    config = (tmp_path / "config.yaml").read_text()
    assert "rollout_steps: 64" in config and "policy_lr: 0.0003" in config
    meta = (tmp_path / "meta.json").read_text()
    assert '"torch"' in meta and '"gymnasium"' in meta and '"git_commit"' in meta
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert [p.name for p in checkpoint_paths(tmp_path)] == [
        "ckpt-000004.json", "ckpt-000006.json", "ckpt-000008.json"]  # keep_checkpoints = 3


def _train_cmd(out, *extra):
    sets = [f"--set={k}={v}" for k, v in TINY.items()]
    return [sys.executable, "-m", "robustpo", "train", "--env", "Hopper-v5", "--steps",
            str(STEPS * 2), "--seed", "3", "--out", str(out), "--no-progress", *sets, *extra]


def test_resume_after_sigkill_is_bit_identical(tmp_path):
    full = tmp_path / "full"
    subprocess.run(_train_cmd(full), check=True, capture_output=True)
    cut = tmp_path / "cut"
    proc = subprocess.Popen(_train_cmd(cut), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (cut / "checkpoints" / "ckpt-000006.json").exists():
        assert proc.poll() is None and time.time() < deadline, "training ended before the kill"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (cut / "agent.json").exists()
    last = checkpoint_paths(cut)[-1]
    _, meta = load_checkpoint(last)
    saved_iteration = meta["iteration"]
    assert 6 <= saved_iteration < 16
    subprocess.run([sys.executable, "-m", "robustpo", "train", "--resume", str(cut),
                    "--no-progress"], check=True, capture_output=True)
    assert tensors_equal(load_agent(full).tensors(), load_agent(cut).tensors())
    rows = (cut / "metrics.csv").read_text().strip().splitlines()
    assert [int(r.split(",")[0]) for r in rows[1:]] == list(range(1, 17))


def test_resume_restores_the_saved_iteration_state_exactly(tmp_path, tiny):
    train("ppo", "Hopper-v5", steps=STEPS, seed=1, out=tmp_path, overrides=tiny, progress=False)
    tensors, meta = load_checkpoint(checkpoint_paths(tmp_path)[-1])
    learner = robustpo.learners.ppo.PPOLearner(config_from_dict(meta["config"], "test"))
    learner.restore(tensors, meta, "test")
    assert learner.iteration == meta["iteration"] == 8
    assert tensors_equal(learner.state_tensors(), tensors)
    learner.close()


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, tiny, monkeypatch):
    real = robustpo.learners.ppo.value_loss_and_grads
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        value, critic_grads = real(*args, **kwargs)
        # iteration 5 of the tiny config starts after 4 * (2 epochs * 4 minibatches) calls
        if calls["n"] > 4 * 8:
            value = value * float("nan")
        return value, critic_grads

    monkeypatch.setattr(robustpo.learners.ppo, "value_loss_and_grads", poisoned)
    with pytest.raises(NonFiniteError, match="the value loss became NaN or infinite") as err:
        train("ppo", "Hopper-v5", steps=STEPS, seed=0, out=tmp_path, overrides=tiny,
              progress=False)
    assert "iteration 4" in str(err.value) and "ckpt-000004.json" in str(err.value)
    _, meta = load_checkpoint(checkpoint_paths(tmp_path)[-1])
    assert meta["iteration"] == 4
    ok = load_agent(tmp_path)  # the last good checkpoint still loads, with finite weights
    assert all(torch.isfinite(t).all() for t in ok.tensors().values())


def test_resume_refuses_missing_and_inconsistent_runs(tmp_path, tiny):
    with pytest.raises(CheckpointError, match="nothing does not exist"):
        train(resume=tmp_path / "nothing", progress=False)
    train("ppo", "Hopper-v5", steps=STEPS, seed=0, out=tmp_path, overrides=tiny, progress=False)
    with pytest.raises(CheckpointError, match="already holds a run"):
        train("ppo", "Hopper-v5", steps=STEPS, out=tmp_path, overrides=tiny, progress=False)
    exported = tmp_path / "exported"  # an agent copied out of its run: no checkpoints
    exported.mkdir()
    for name in ("config.yaml", "meta.json", "metrics.csv", "agent.json", "agent.safetensors"):
        shutil.copy(tmp_path / name, exported / name)
    before = {p.name: p.read_bytes() for p in exported.iterdir()}
    with pytest.raises(CheckpointError, match="holds a trained agent but no checkpoint"):
        train(resume=exported, progress=False)
    after = {p.name: p.read_bytes() for p in exported.iterdir() if p.name != RUN_LOCK_FILE}
    assert after == before  # nothing overwritten
    config = tmp_path / "config.yaml"
    config.write_text(config.read_text().replace("num_envs: 2", "num_envs: 3"))
    with pytest.raises(CheckpointError, match=r"config that differs from .* in ppo\.num_envs\."):
        train(resume=tmp_path, progress=False)
    config.write_text("unknown_key: 1\n")
    with pytest.raises(Exception, match="Unknown config key"):
        train(resume=tmp_path, progress=False)


def test_a_run_directory_in_use_by_another_process_is_left_untouched(tmp_path, tiny):
    run = tmp_path / "run"
    train("ppo", "Hopper-v5", steps=STEPS // 2, seed=0, out=run, overrides=tiny, progress=False)
    files = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    with exclusive(run / RUN_LOCK_FILE, "test"):
        with pytest.raises(BusyError, match="in use by another robustpo process"):
            train(resume=run, progress=False)
        with pytest.raises(BusyError):
            train("ppo", "Hopper-v5", steps=STEPS, seed=0, out=run, overrides=tiny,
                  progress=False)
        cli = subprocess.run([sys.executable, "-m", "robustpo", "train", "--resume", str(run),
                              "--no-progress"], capture_output=True, text=True)
        assert cli.returncode == 2 and "in use by another robustpo process" in cli.stderr
        assert "Traceback" not in cli.stderr
    assert {p: p.read_bytes() for p in run.rglob("*")
            if p.is_file() and p.name != ".lock"} == files
    # released: a fresh --out trains, and the run itself would resume (refused only as done)
    train("ppo", "Hopper-v5", steps=STEPS // 2, seed=0, out=tmp_path / "other", overrides=tiny,
          progress=False)


def test_training_on_the_envpool_backend_runs_and_resumes(tmp_path, tiny):
    pytest.importorskip("envpool")
    overrides = dict(tiny, vector_mode="envpool")
    result = train("ppo", "Hopper-v5", steps=STEPS, seed=0, out=tmp_path, overrides=overrides,
                   progress=False)
    assert result.global_step == STEPS
    a = train("ppo", "Hopper-v5", steps=STEPS, seed=0, out=tmp_path / "again",
              overrides=overrides, progress=False)
    assert tensors_equal(result.agent.tensors(), a.agent.tensors())  # deterministic too
