import json
from pathlib import Path

import numpy as np
import pytest
import torch

from robustpo.agents.agent import Agent, gaussian_agent, load_agent
from robustpo.core.nets import DeterministicActor, ValueNet
from robustpo.core.normalization import ObservationNormalizer
from robustpo.errors import CheckpointError
from robustpo.io.checkpoint import load_checkpoint, save_checkpoint

from .conftest import tensors_equal


def make_agent(hidden=(16, 16)):
    torch.manual_seed(0)
    agent = gaussian_agent("Hopper-v5", 11, 3, -np.ones(3), np.ones(3), list(hidden))
    agent.obs_normalizer.normalize(np.random.default_rng(0).normal(size=(50, 11)))
    return agent


def test_agent_round_trip_is_bit_exact(tmp_path):
    agent = make_agent()
    agent.save(tmp_path)
    loaded = load_agent(tmp_path)
    assert tensors_equal(agent.tensors(), loaded.tensors())
    obs = np.random.default_rng(1).normal(size=(4, 11))
    np.testing.assert_array_equal(agent.act(obs), loaded.act(obs))
    assert loaded.obs_normalizer.frozen
    assert loaded.act(obs[0]).shape == (3,)


def test_generic_round_trip_keeps_dtypes(tmp_path):
    tensors = {"a": torch.arange(5, dtype=torch.int64), "b": torch.randn(2, 3, dtype=torch.float64),
               "c": torch.tensor([1, 2], dtype=torch.uint8)}
    path = save_checkpoint(tmp_path / "x", tensors, {"k": [1, "two"]})
    loaded, meta = load_checkpoint(path)
    assert tensors_equal(tensors, loaded) and meta == {"k": [1, "two"]}
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temporary files


def test_a_dot_in_the_name_is_kept(tmp_path):
    """Names such as ``q-eps0.05`` get their suffixes appended, not swapped for ``.05``."""
    for name in ("q-eps0.05", "q-eps0.1"):
        save_checkpoint(tmp_path / name, {"w": torch.full((2,), float(name[-1]))}, {"n": name})
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "q-eps0.05.json", "q-eps0.05.safetensors", "q-eps0.1.json", "q-eps0.1.safetensors"]
    tensors, meta = load_checkpoint(tmp_path / "q-eps0.05.json")
    assert meta == {"n": "q-eps0.05"} and tensors["w"].tolist() == [5.0, 5.0]


def test_corrupt_weights_are_detected(tmp_path):
    make_agent().save(tmp_path)
    weights = tmp_path / "agent.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt: their SHA-256 does not match") as err:
        load_agent(tmp_path)
    assert "No earlier copy is kept beside it" in str(err.value)  # an agent file: no fallback


def test_a_damaged_checkpoint_of_a_run_points_to_the_previous_one(tmp_path):
    run_ckpts = tmp_path / "checkpoints"
    run_ckpts.mkdir()
    save_checkpoint(run_ckpts / "ckpt-000002", {"w": torch.zeros(3)}, {"iteration": 2})
    (run_ckpts / "ckpt-000002.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="fall back to the run's previous checkpoint"):
        load_checkpoint(run_ckpts / "ckpt-000002.json")


def test_truncated_metadata_and_missing_weights(tmp_path):
    make_agent().save(tmp_path)
    meta = tmp_path / "agent.json"
    text = meta.read_text()
    meta.write_text(text[: len(text) // 2])
    with pytest.raises(CheckpointError, match="corrupt or not a robustpo checkpoint"):
        load_agent(tmp_path)
    meta.write_text(text)
    (tmp_path / "agent.safetensors").unlink()
    with pytest.raises(CheckpointError, match="weights .* are missing"):
        load_agent(tmp_path)


def test_other_format_version_is_refused(tmp_path):
    make_agent().save(tmp_path)
    meta = tmp_path / "agent.json"
    record = json.loads(meta.read_text())
    record["format_version"] = 99
    meta.write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="format version 99"):
        load_agent(tmp_path)


def test_incompatible_agent_shapes_are_refused(tmp_path):
    make_agent(hidden=(16, 16)).save(tmp_path)
    record = json.loads((tmp_path / "agent.json").read_text())
    record["meta"]["agent"]["modules"]["actor"]["hidden"] = [32, 32]
    (tmp_path / "agent.json").write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="does not fit this agent"):
        load_agent(tmp_path)
    record["meta"]["agent"]["modules"]["actor"]["kind"] = "transformer"
    (tmp_path / "agent.json").write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="description is incomplete"):
        load_agent(tmp_path)


def test_agents_of_any_named_modules_round_trip(tmp_path):
    torch.manual_seed(0)
    actor = DeterministicActor(11, 3, [32, 32], -2 * np.ones(3), 2 * np.ones(3))
    head = ValueNet(11, [8])  # an extra head beside the actor, e.g. a worst-case critic
    agent = Agent("Hopper-v5", {"actor": actor, "worst_q": head},
                  ObservationNormalizer(11), -2 * np.ones(3), 2 * np.ones(3), attack_eps=0.05)
    agent.save(tmp_path)
    loaded = load_agent(tmp_path)
    assert list(loaded.modules) == ["actor", "worst_q"] and loaded.attack_eps == 0.05
    assert tensors_equal(agent.tensors(), loaded.tensors())
    obs = np.random.default_rng(1).normal(size=(4, 11))
    actions = loaded.act(obs)
    np.testing.assert_array_equal(actions, agent.act(obs))
    assert (np.abs(actions) <= 2).all()
    np.testing.assert_array_equal(loaded.act(obs, deterministic=False), actions)
    with pytest.raises(AttributeError, match="has no critic"):
        _ = loaded.critic


def test_agents_saved_before_named_modules_still_load():
    zoo = Path(__file__).resolve().parents[1] / "zoo" / "ppo-Hopper-v5"
    spec = json.loads((zoo / "agent.json").read_text())["meta"]["agent"]
    assert "modules" not in spec  # the v0.2 form: hidden sizes of an actor and a critic
    agent = load_agent(zoo)
    assert list(agent.modules) == ["actor", "critic"]
    assert agent.attack_eps == 0.075  # from the run directory's config


def test_missing_run_directory_and_empty_directory(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_agent(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="holds no agent"):
        load_agent(tmp_path)


def test_act_rejects_wrong_observation_shape():
    with pytest.raises(ValueError, match=r"expects observations of shape \(11,\)"):
        make_agent().act(np.zeros(5))


def test_an_agent_with_non_finite_weights_or_statistics_is_refused(tmp_path):
    agent = gaussian_agent("Hopper-v5", 11, 3, -np.ones(3), np.ones(3), [8, 8])
    with torch.no_grad():
        agent.actor.state_dict()[next(k for k in agent.actor.state_dict()
                                      if k.endswith("weight"))][0, 0] = float("nan")
    agent.save(tmp_path / "nan")
    with pytest.raises(CheckpointError, match="not finite .* actor"):
        load_agent(tmp_path / "nan")
    agent = gaussian_agent("Hopper-v5", 11, 3, -np.ones(3), np.ones(3), [8, 8])
    agent.obs_normalizer.rms.var[2] = -1.0
    agent.save(tmp_path / "negative-var")
    with pytest.raises(CheckpointError, match="negative normaliser variance"):
        load_agent(tmp_path / "negative-var")


def test_normaliser_statistics_of_another_length_are_refused(tmp_path):
    agent = gaussian_agent("Hopper-v5", 11, 3, -np.ones(3), np.ones(3), [8, 8])
    tensors = agent.tensors()
    tensors["obs_rms.mean"] = tensors["obs_rms.mean"][:5]
    with pytest.raises(CheckpointError, match=r"does not fit this agent .*shape \(5,\)"):
        agent.load_tensors(tensors, "test")


def test_a_resumed_metrics_file_drops_a_torn_last_row(tmp_path):
    from robustpo.io.rundir import MetricsCSV

    path = tmp_path / "metrics.csv"
    path.write_text("iteration,loss\n1,0.5\n2,0.4\n3,0.3\n4,0.2\n5")
    metrics = MetricsCSV(path, ["iteration", "loss"], resume_iteration=3)
    metrics.write({"iteration": 4, "loss": 0.25})
    metrics.close()
    assert path.read_text().splitlines() == ["iteration,loss", "1,0.5", "2,0.4", "3,0.3",
                                             "4,0.25"]
    path.write_text("iteration,loss\n1,0.5\n,0.4\n")  # a row without its iteration
    MetricsCSV(path, ["iteration", "loss"], resume_iteration=3).close()
    assert path.read_text().splitlines() == ["iteration,loss", "1,0.5"]


def test_a_save_interrupted_between_its_two_writes_loads_the_previous_pair(tmp_path, monkeypatch):
    """The tensors are replaced before the JSON; a crash in between must not lose the agent."""
    import robustpo.io.checkpoint as ckpt

    save_checkpoint(tmp_path / "agent", {"w": torch.zeros(3)}, {"version": 1})
    real_write_text = ckpt.atomic_write_text

    def crash(path, text):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt, "atomic_write_text", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path / "agent", {"w": torch.ones(3)}, {"version": 2})
    monkeypatch.setattr(ckpt, "atomic_write_text", real_write_text)
    with pytest.warns(RuntimeWarning, match="save was interrupted"):
        tensors, meta = load_checkpoint(tmp_path / "agent.json")
    assert meta == {"version": 1} and tensors["w"].tolist() == [0.0, 0.0, 0.0]
    save_checkpoint(tmp_path / "agent", {"w": torch.ones(3)}, {"version": 3})  # a later save
    tensors, meta = load_checkpoint(tmp_path / "agent.json")
    assert meta == {"version": 3} and tensors["w"].tolist() == [1.0, 1.0, 1.0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent.json", "agent.safetensors"]


def test_a_previous_copy_that_does_not_match_is_not_loaded(tmp_path):
    save_checkpoint(tmp_path / "agent", {"w": torch.zeros(3)}, {"version": 1})
    (tmp_path / "agent.safetensors.prev").write_bytes(b"stale")
    (tmp_path / "agent.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="corrupt: their SHA-256 does not match"):
        load_checkpoint(tmp_path / "agent.json")
