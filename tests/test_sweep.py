"""`robustpo sweep`: study files, one trial without Ray, and a 4-trial study on Ray Tune killed
midway and resumed."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import robustpo
from robustpo.errors import CheckpointError, ConfigError, UnknownNameError
from robustpo.sweep.study import load_study
from robustpo.sweep.trial import run_trial

from .conftest import TINY, tensors_equal

STUDY = {
    "name": "pendulum", "methods": ["ppo"], "envs": ["InvertedPendulum-v5"], "seeds": 2,
    "steps": 2 * 64 * 16, "preset": "defaults", "set": TINY,
    "grid": {"policy_lr": [3e-4, 1e-3]},
    "attack": {"attacks": ["random"], "episodes": 3},
}


def write_study(tmp_path: Path, **changes) -> Path:
    data = {**STUDY, "out": str(tmp_path / "out"), **changes}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in data.items() if v is not None}))
    return path


def test_a_grid_study_lists_methods_x_envs_x_seeds_x_grid(tmp_path):
    study = load_study(write_study(tmp_path, methods=["ppo", "sappo"], seeds=[3, 7]))
    trials = study.trials()
    assert len(trials) == 2 * 2 * 2
    assert len({t.name for t in trials}) == 8
    assert trials[0].name == "ppo-InvertedPendulum-v5-s3-policy_lr0.0003"
    assert trials[0].overrides == {**TINY, "policy_lr": 3e-4}
    assert study.run_dir(trials[0]) == (tmp_path / "out" / trials[0].name).resolve()
    assert study.attack.attacks == ("random",) and study.attack.protocol == "quick"


@pytest.mark.parametrize("changes, error, words", [
    ({"kappa": 1}, ConfigError, "unknown keys kappa"),
    ({"methods": ["nope"]}, UnknownNameError, "algorithm 'nope'"),
    ({"envs": ["Nope-v0"]}, UnknownNameError, "environment 'Nope-v0'"),
    ({"seeds": 0}, ConfigError, "seeds must be"),
    ({"seeds": 10**8}, ConfigError, "seeds must be a count"),
    ({"methods": ["ppo", "ppo"]}, ConfigError, "distinct names"),
    ({"grid": {"seed": [1, 2]}}, ConfigError, "seeds go in the study's seeds key"),
    ({"name": "../escape"}, ConfigError, "name must be a plain name"),
    ({"seeds": [1, 1]}, ConfigError, "distinct"),
    ({"grid": {"policy_lr": 1e-3}}, ConfigError, "grid.policy_lr must be a non-empty list"),
    ({"grid": {"no_such_key": [1]}}, ConfigError, "Unknown config key 'no_such_key'"),
    ({"grid": {"policy_lr": [-1.0]}}, ConfigError, "policy_lr"),
    ({"set": {**TINY, "policy_lr": 1e-3}}, ConfigError, "both in set and in grid"),
    ({"attack": {"attacks": ["nope"]}}, UnknownNameError, "'nope'"),
    ({"attack": {"protocol": "slow"}}, UnknownNameError, "protocol 'slow'"),
    ({"search": {"space": {"kappa": {"normal": [0, 1]}}}}, UnknownNameError, "distribution"),
    ({"search": {"space": {"clip_eps": {"loguniform": [0.0, 1.0]}}}}, ConfigError, "low > 0"),
    ({"grid": None, "search": {"space": {"clip_eps": {"uniform": [0.1, 0.3]}},
                               "metric": "worst_case", "scheduler": "asha"}},
     ConfigError, "ASHA"),
    ({"grid": None, "search": {"space": {"clip_eps": {"uniform": [0.1, 0.3]}}}}, ConfigError,
     "Optuna tunes one configuration space"),
    ({"grid": None, "seeds": [0], "search": {"space": {"clip_eps": {"uniform": [0.1, 0.3]}},
                                             "metric": "nope"}}, UnknownNameError, "metric"),
])
def test_bad_studies_fail_before_any_work_with_a_clear_message(tmp_path, changes, error, words):
    with pytest.raises(error, match=words):
        load_study(write_study(tmp_path, **changes))


def test_a_tuning_study_names_sampled_trials_by_a_hash(tmp_path):
    study = load_study(write_study(tmp_path, grid=None, seeds=[0], search={
        "space": {"clip_eps": {"uniform": [0.1, 0.3]}, "policy_lr": {"choice": [1e-4, 3e-4]}},
        "samples": 4, "scheduler": "asha"}))
    assert study.search.space["clip_eps"] == ("uniform", (0.1, 0.3))
    a = study.trial("ppo", "InvertedPendulum-v5", 0, {"clip_eps": 0.123456789})
    b = study.trial("ppo", "InvertedPendulum-v5", 0, {"clip_eps": 0.123456788})
    assert a.name != b.name and a.name.startswith("ppo-InvertedPendulum-v5-s0-")
    with pytest.raises(ConfigError, match="drawn during the sweep"):
        study.trials()


def test_a_trial_reports_every_iteration_then_its_attack_and_resumes_without_retraining(
        tmp_path):
    study = load_study(write_study(tmp_path))
    trial = study.trials()[0]
    reports: list[dict] = []
    final = run_trial(study, trial, reports.append)
    # The last iteration is reported once the agent is saved and attacked, so that a
    # scheduler stopping the trial at that report loses nothing.
    assert [r["iteration"] for r in reports] == list(range(1, 17))
    assert all(set(r) == set(reports[0]) for r in reports[:-1])  # NaN until a return is known
    assert reports[-1] == final and set(final) == set(reports[0]) | {"natural", "worst_case"}
    suite = json.loads((study.run_dir(trial) / "attack.json").read_text())
    assert final["worst_case"] == suite["worst"]["mean"] == suite["attacks"]["random"]["mean"]
    again: list[dict] = []
    resumed = run_trial(study, trial, again.append)  # nothing left to train; suite read back
    assert again == [resumed] and resumed["iteration"] == 16
    assert resumed["worst_case"] == final["worst_case"]


def test_a_changed_study_does_not_continue_a_run_of_the_old_config(tmp_path):
    study = load_study(write_study(tmp_path, steps=256))
    run_trial(study, study.trials()[0], lambda r: None)
    changed = load_study(write_study(tmp_path, steps=512))
    with pytest.raises(CheckpointError, match="study file changed"):
        run_trial(changed, changed.trials()[0], lambda r: None)


def test_without_ray_the_sweep_says_what_to_install(tmp_path, monkeypatch):
    from robustpo.sweep.tuner import SweepDependencyError, run_study

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(SweepDependencyError, match=r"pip install 'robustpo\[sweep\]'"):
        run_study(load_study(write_study(tmp_path)))


def test_resuming_a_study_never_started_is_refused(tmp_path):
    from robustpo.sweep.tuner import run_study

    with pytest.raises(ConfigError, match="was never started"):
        run_study(load_study(write_study(tmp_path)), resume=True)
    assert not (tmp_path / "out").exists()


def test_nothing_but_the_tuner_imports_ray():
    code = ("import sys, robustpo, robustpo.cli, robustpo.sweep.study, robustpo.sweep.trial, "
            "robustpo.report.page; assert 'ray' not in sys.modules, 'ray imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
    src = Path(robustpo.__file__).parent
    importers = {p.name for p in src.rglob("*.py") if "import ray" in p.read_text()
                 or '"ray' in p.read_text()}
    assert importers == {"tuner.py"}


def _trial_dirs(out: Path) -> list[Path]:
    """The run directories in a study's out (Tune's state and the report's figures aside)."""
    return sorted(p for p in out.iterdir() if (p / "config.yaml").is_file())


@pytest.mark.slow
def test_a_killed_study_resumes_to_exactly_its_trials_each_equal_to_running_it_alone(tmp_path):
    path = write_study(tmp_path)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "robustpo", "sweep", str(path)]
    env = {**os.environ, "RAY_DEDUP_LOGS": "0"}
    log = (tmp_path / "first.log").open("w")
    driver = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    # Kill the driver once a trial has its first checkpoint: its workers outlive the driver
    # briefly, and the trial's remaining 14 iterations keep it unfinished meanwhile.
    deadline = time.time() + 300
    while not any((d / "checkpoints" / "ckpt-000002.json").exists()
                  and not (d / "agent.json").exists() for d in out.glob("ppo-*")):
        assert driver.poll() is None and time.time() < deadline, (tmp_path / "first.log"
                                                                  ).read_text()[-3000:]
        time.sleep(0.05)
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    interrupted = [d for d in _trial_dirs(out) if not (d / "agent.json").exists()]
    assert interrupted  # something is left for --resume to finish

    with pytest.raises(subprocess.CalledProcessError) as info:  # no silent restart
        subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    assert "--resume" in info.value.stderr
    done = subprocess.run([*command, "--resume"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    study = load_study(path)
    assert [d.name for d in _trial_dirs(out)] == sorted(t.name for t in study.trials())
    assert (out / "report.html").is_file() and (out / "results.md").is_file()
    for trial in study.trials():
        run_dir = study.run_dir(trial)
        rows = (run_dir / "metrics.csv").read_text().strip().splitlines()[1:]
        assert [int(r.split(",")[0]) for r in rows] == list(range(1, 17))
        assert (run_dir / "attack.json").is_file()
        alone = robustpo.train(trial.algo, trial.env, steps=study.steps, seed=trial.seed,
                               out=tmp_path / "alone" / trial.name, preset=study.preset,
                               overrides=trial.overrides, progress=False)
        assert tensors_equal(robustpo.load_agent(run_dir).tensors(), alone.agent.tensors()), \
            trial.name


@pytest.mark.slow
def test_a_tuning_study_samples_with_optuna_stops_with_asha_and_names_the_best(tmp_path):
    path = write_study(tmp_path, grid=None, seeds=[0], attack=None, steps=2 * 64 * 16, search={
        "space": {"policy_lr": {"loguniform": [1e-4, 3e-3]}}, "samples": 4,
        "metric": "episode_return", "scheduler": "asha", "grace_period": 4,
        "reduction_factor": 2})
    done = subprocess.run([sys.executable, "-m", "robustpo", "sweep", str(path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    runs = _trial_dirs(tmp_path / "out")
    assert len(runs) == 4  # four configurations drawn, each its own run directory
    finished = [d for d in runs if (d / "agent.json").is_file()]
    assert finished and "Best episode_return (max)" in done.stdout
    for run_dir in runs:  # a trial stopped at a rung has no agent (Tune kills it a little late)
        iterations = len((run_dir / "metrics.csv").read_text().strip().splitlines()) - 1
        assert iterations >= 4 and (run_dir / "agent.json").is_file() == (iterations == 16)


def test_the_example_studies_load():
    examples = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml"))
    assert len(examples) >= 2
    for path in examples:
        study = load_study(path)
        assert study.search is not None or study.trials()
