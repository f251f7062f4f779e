"""robustpo report: the page renders from the zoo's runs with every figure, and the
aggregates equal hand-computed values and rliable's."""

import re
from pathlib import Path

import numpy as np
import pytest

from robustpo.errors import CheckpointError
from robustpo.report.aggregates import (
    aggregate_estimates,
    improvement_probabilities,
    performance_profiles,
)
from robustpo.report.data import RunData, method_curves
from robustpo.report.page import build_report

ZOO = Path(__file__).resolve().parents[1] / "zoo"


def test_the_report_renders_from_zoo_runs_with_every_figure(tmp_path):
    runs = [ZOO / "ppo-Hopper-v5", ZOO / "barppo-Hopper-v5", ZOO / "sappo-Hopper-v5",
            ZOO / "sb3-ppo-Hopper-v5"]
    out = build_report(runs, tmp_path / "report.html")
    page = out.read_text()
    figures = sorted(p.stem for p in (tmp_path / "report_figures").glob("*.png"))
    expected = {"training", "observation-scatter", "observation-attacks", "action-eps",
                "observation-aggregates-worst-case", "observation-aggregates-natural",
                "observation-improvement", "observation-profile"}
    assert {f"Hopper-v5-{name}" for name in expected} <= set(figures)
    assert all((tmp_path / "report_figures" / f"{f}.svg").is_file() for f in figures)
    assert len(re.findall(r'<img alt="[^"]*" src="data:image/png;base64,', page)) == len(figures)
    assert "http" not in page.split("<body>")[1].replace("https://", "")  # nothing fetched
    for name in ("PPO", "BAR-PPO", "SA-PPO", "SB3 victim"):
        assert name in page


def test_a_directory_that_is_not_a_run_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="not a robustpo run directory"):
        build_report([tmp_path], tmp_path / "report.html")
    with pytest.raises(CheckpointError, match="at least one run"):
        build_report([], tmp_path / "report.html")


def test_aggregates_equal_hand_computed_values():
    scores = {"a": np.arange(1.0, 9.0), "b": np.array([1.0, 2.0, 3.0, 100.0])}
    est = aggregate_estimates(scores)
    assert est["a"]["IQM"].point == pytest.approx(4.5)  # mean of 3, 4, 5, 6
    assert est["b"]["IQM"].point == pytest.approx(2.5)  # mean of 2, 3
    assert est["b"]["median"].point == pytest.approx(2.5)
    assert est["b"]["mean"].point == pytest.approx(26.5)
    for method in scores:
        for e in est[method].values():
            assert e.low <= e.point <= e.high
    poi = improvement_probabilities({"x": np.array([1.0, 2.0, 3.0]), "y": np.array([2.0, 2.0])})
    # pairs (1,2) x2: 0; (2,2) x2: ties, 1/2 each; (3,2) x2: 1 -> 3/6
    assert poi[("x", "y")].point == pytest.approx(0.5)
    assert poi[("y", "x")].point == pytest.approx(0.5)
    profile, ci = performance_profiles({"a": np.arange(1.0, 9.0)}, np.array([0.0, 4.5, 8.0]))["a"]
    assert profile.tolist() == [1.0, 0.5, 0.0]
    assert ci.shape == (2, 3) and ci[0, 0] == ci[1, 0] == 1.0


@pytest.mark.filterwarnings("ignore:random_state is deprecated:FutureWarning")
def test_bootstrap_intervals_agree_with_rliables():
    from rliable import library as rly
    from rliable import metrics

    scores = np.random.default_rng(1).normal(1000, 300, size=12)
    ours = aggregate_estimates({"m": scores}, reps=4000)["m"]["IQM"]
    _, intervals = rly.get_interval_estimates(
        {"m": scores.reshape(-1, 1)}, lambda x: np.array([metrics.aggregate_iqm(x)]),
        reps=4000, random_state=np.random.RandomState(0))
    low, high = intervals["m"][:, 0]
    width = high - low
    assert ours.low == pytest.approx(low, abs=0.1 * width)
    assert ours.high == pytest.approx(high, abs=0.1 * width)


def _swept(method: str, env: str, curves: dict[str, tuple[list, list]]) -> RunData:
    run = RunData(Path(method), method, env, 0, "")
    run.robustness["action"] = {k: (np.array(e), np.array(v)) for k, (e, v) in curves.items()}
    return run


def test_robustness_curves_per_method_take_each_runs_worst_case_at_their_common_radii():
    runs = [
        _swept("A", "Hopper-v5", {"natural": ([0, 0.1, 0.2], [10, 11, 12]),
                                   "random": ([0, 0.1, 0.2], [10, 8, 7]),
                                   "min-q": ([0, 0.1, 0.2], [10, 9, 3])}),
        _swept("A", "Hopper-v5", {"natural": ([0, 0.1], [20, 21]),
                                   "random": ([0, 0.1], [20, 5])}),
        _swept("B", "Hopper-v5", {"natural": ([0.3], [1]), "random": ([0.3], [0.5])}),
        _swept("B", "Walker2d-v5", {"natural": ([0.1], [9]), "random": ([0.1], [9])}),
        _swept("C", "Hopper-v5", {"natural": ([0.1], [1]), "random": ([0.1], [0.5])}),
        _swept("C", "Hopper-v5", {"natural": ([0.2], [1]), "random": ([0.2], [0.5])}),
    ]
    curves = {c.method: c for c in method_curves(runs, "Hopper-v5", "action")}
    assert list(curves) == ["A", "B"]  # C's two runs share no radius
    a = curves["A"]
    assert a.runs == 2 and a.eps.tolist() == [0, 0.1]
    assert a.worst.tolist() == [[10, 8], [20, 5]]
    assert a.natural.tolist() == [[10, 11], [20, 21]]
    assert curves["B"].runs == 1 and curves["B"].worst.tolist() == [[0.5]]
    assert method_curves(runs, "Hopper-v5", "observation") == []
