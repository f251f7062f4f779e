"""Grouping agents by method and picking the median agent by worst-case return."""

import json
import math

import pytest
import yaml

from robustpo.errors import CheckpointError
from robustpo.results.compare import (
    markdown_table,
    median_agent,
    method_name,
    per_attack,
    read_agent,
    summarise,
)
from robustpo.results.convergence import convergence_flags, worst_label
from robustpo.training.presets import config_from_dict

from .test_cli import run_cli


def make_run(tmp_path, name, algo, seed, natural, attacks, kappa=1.0):
    run = tmp_path / name
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(
        {"algo": algo, "env": "Hopper-v5", "seed": seed, "kappa": kappa}))
    (run / "attack.json").write_text(json.dumps({
        "env": "Hopper-v5", "eps": 0.075, "episodes": 50, "natural": {"mean": natural},
        "attacks": {k: {"mean": v} for k, v in attacks.items()}}))
    return run


def test_median_agent_is_the_median_worst_case_not_the_median_natural(tmp_path):
    seeds = [(0, 3000, 2500, 900), (1, 3600, 1200, 2000), (2, 3300, 3000, 3100)]
    rows = [read_agent(make_run(tmp_path, f"s{s}", "barppo", s, nat, {"mad": m, "rs": r}))
            for s, nat, m, r in seeds]
    # worst: s0 900 (rs), s1 1200 (mad), s2 3000 (mad); median natural would be s2
    assert [r.worst for r in rows] == [("rs", 900), ("mad", 1200), ("mad", 3000)]
    assert median_agent(rows).seed == 1
    assert median_agent(rows[:2]).seed == 0  # lower median for an even count
    assert {r.method for r in rows} == {"BAR-PPO (kappa 1)"}
    assert rows[0].drop == pytest.approx((900 - 3000) / 3000)


def test_markdown_groups_methods_and_marks_the_median(tmp_path):
    runs = [make_run(tmp_path, "ppo", "ppo", 0, 3600, {"mad": 1000, "rs": 700}),
            make_run(tmp_path, "arpo0", "carppo", 0, 1000, {"mad": 900, "rs": 800}, kappa=0.0),
            make_run(tmp_path, "arpo1", "carppo", 1, 1200, {"mad": 950, "rs": 1100}, kappa=0.0),
            make_run(tmp_path, "car", "carppo", 0, 3000, {"mad": 2000, "rs": 1500})]
    table = markdown_table([read_agent(r) for r in runs]).splitlines()
    assert table[0].startswith("| env | method | seed | natural | mad | rs | worst |")
    methods = [line.split(" | ")[1] for line in table[2:6]]
    assert methods == ["PPO", "CAR-PPO (no guidance)", "CAR-PPO (no guidance)", "CAR-PPO"]
    assert "| 0 (median) |" in table[3] and "**≤ 800.0** (rs)" in table[3]
    assert "≤ upper bound" in table[-1]  # the legend
    assert "**" not in table[2] + table[4] + table[5]  # single agents and non-median rows


def test_missing_or_corrupt_results_say_what_to_run(tmp_path):
    run = make_run(tmp_path, "r", "ppo", 0, 1.0, {"mad": 0.5})
    (run / "attack.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="is not a robustpo attack result"):
        read_agent(run)
    (run / "attack.json").unlink()
    code, out = run_cli("compare", str(run))
    assert code == 2 and "Traceback" not in out
    assert f"robustpo attack {run} --attacks all" in " ".join(out.split())


def test_a_suite_written_elsewhere_is_read_by_its_file_name(tmp_path):
    run = make_run(tmp_path, "r", "ppo", 0, 3000.0, {"mad": 900.0})
    (run / "attack.json").rename(run / "attack-eps0.2.json")
    assert read_agent(run, result_file="attack-eps0.2.json").worst == ("mad", 900.0)
    with pytest.raises(CheckpointError, match=r"--eps EPS --json .*attack-eps0.3.json"):
        read_agent(run, result_file="attack-eps0.3.json")
    code, out = run_cli("compare", str(run), "--results", "attack-eps0.2.json")
    assert code == 0 and "≤ 900" in out


def test_method_name_marks_guidance_kappa_clean_std_and_layout():
    def name(config):
        return method_name(config_from_dict(config, "test"))

    assert name({"algo": "carppo", "kappa": 0.0}) == "CAR-PPO (no guidance)"
    assert name({"algo": "barppo", "kappa": 0.3}) == "BAR-PPO (kappa 0.3)"
    assert (name({"algo": "barppo", "kappa": 0.3, "robust_std_grad": "clean"})
            == "BAR-PPO (kappa 0.3, clean-std)")
    assert name({"algo": "sappo", "kappa": 1.0, "robust_std_grad": "clean", "sigma_grad": True}
                ) == "SA-PPO"
    assert name({"algo": "sappo", "kappa": 1.0}) == "SA-PPO (sigma fixed)"  # before the presets
    assert name({"algo": "ppo", "num_envs": 8, "rollout_steps": 256}) == "PPO"
    assert (name({"algo": "barppo", "kappa": 0.3, "num_envs": 1, "rollout_steps": 2048})
            == "BAR-PPO (kappa 0.3, 1 env x 2048)")
    sectioned = {"algo": "barppo", "method": {"kappa": 0.5}, "ppo": {"num_envs": 1,
                                                                   "rollout_steps": 2048}}
    assert name(sectioned) == "BAR-PPO (kappa 0.5, 1 env x 2048)"


def test_learned_attacks_that_did_not_converge_are_flagged():
    means = {"random": 3000.0, "mad": 2000.0, "rs": 1500.0, "sarl": 2600.0, "paad": 2050.0}
    ci_low = {"random": 2900.0, "mad": 1900.0, "rs": 1400.0, "sarl": 2500.0, "paad": 1950.0}
    flags = convergence_flags(means, ci_low)
    # sarl's CI lies above MAD's 2000: flagged; paad's reaches below it: not; rs is lower
    assert set(flags) == {"sarl"} and "mad's 2000.0" in flags["sarl"]
    assert convergence_flags({"sarl": 10.0}, {"sarl": 5.0}) == {}  # nothing to compare with
    assert worst_label("quick") and not worst_label("paper")


def test_tables_mark_flags_and_upper_bounds(tmp_path):
    run = make_run(tmp_path, "ppo", "ppo", 0, 3600, {"mad": 1000, "sarl": 3000})
    data = json.loads((run / "attack.json").read_text())
    data["attacks"]["sarl"]["ci95"] = [2900, 3100]
    data["attacks"]["mad"]["ci95"] = [900, 1100]
    (run / "attack.json").write_text(json.dumps(data))
    row = read_agent(run)
    assert row.flags.keys() == {"sarl"} and row.upper_bound  # no protocol recorded: quick
    table = markdown_table([row])
    assert "3000.0†" in table and "≤ 1000.0" in table and "did not converge" in table
    data["protocol"] = "paper"
    (run / "attack.json").write_text(json.dumps(data))
    assert not read_agent(run).upper_bound


def test_summary_gives_median_natural_and_median_worst_relative_to_the_first_method(tmp_path):
    ppo = [make_run(tmp_path, f"ppo{s}", "ppo", s, nat, {"mad": w})
           for s, nat, w in [(0, 3600, 500), (1, 3400, 700), (2, 3000, 600)]]
    car = [make_run(tmp_path, f"car{s}", "carppo", s, nat, {"mad": w})
           for s, nat, w in [(0, 3300, 1500), (1, 2700, 900)]]
    ppo_summary, car_summary = summarise([read_agent(r) for r in ppo + car])
    assert (ppo_summary.method, ppo_summary.agents, ppo_summary.natural) == ("PPO", 3, 3400)
    assert ppo_summary.median.seed == 2 and ppo_summary.worst_ratio == 1.0
    # CAR-PPO: median natural of an even count is the mean of the middle two; median agent by
    # worst case is the lower median (seed 1, 900)
    assert car_summary.natural == 3000 and car_summary.median.seed == 1
    assert car_summary.baseline == "PPO"
    assert car_summary.natural_ratio == pytest.approx(3000 / 3400)
    assert car_summary.worst_ratio == pytest.approx(900 / 600)
    table = markdown_table([read_agent(r) for r in ppo + car])
    assert "| Hopper-v5 | CAR-PPO | 2 | 3000.0 | ≤ 900.0 (1) | 0.88 (PPO) | 1.50 (PPO) |" in table


def test_per_attack_gives_each_columns_mean_and_std_over_a_methods_agents(tmp_path):
    ppo = [make_run(tmp_path, f"ppo{s}", "ppo", s, nat, {"mad": m, "rs": r})
           for s, nat, m, r in [(0, 3000, 1000, 400), (1, 3400, 600, 800)]]
    car = [make_run(tmp_path, "car0", "carppo", 0, 3300, {"mad": 1500})]
    ppo_stats, car_stats = per_attack([read_agent(r) for r in ppo + car])
    assert ppo_stats.agents == 2
    assert ppo_stats.columns["natural"] == pytest.approx((3200, 282.842712))
    assert ppo_stats.columns["rs"] == pytest.approx((600, 282.842712))
    # the worst case is each agent's own: 400 (rs) and 600 (mad)
    assert ppo_stats.columns["worst"] == pytest.approx((500, 141.421356))
    # an attack some agent lacks is no column of its method; one agent has no std
    assert set(car_stats.columns) == {"natural", "mad", "worst"}
    assert math.isnan(car_stats.columns["mad"][1])
    table = markdown_table([read_agent(r) for r in ppo + car]).splitlines()
    assert "| env | method | agents | natural | mad | rs | worst |" in table
    # rs, a learned attack, did not converge on seed 1 (800 > mad's 600): flagged
    assert ("| Hopper-v5 | PPO | 2 | 3200.0 ± 282.8 | 800.0 ± 282.8 | 600.0 ± 282.8† "
            "| ≤ 500.0 ± 141.4 |") in table
    assert "| Hopper-v5 | CAR-PPO | 1 | 3300.0 | 1500.0 | – | ≤ 1500.0 |" in table
