"""The ``robustpo`` command line. Thin: it parses arguments and calls the library."""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from .errors import ConfigError, RobustpoError, UnknownNameError

if TYPE_CHECKING:
    from .sweep.study import Study

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Adversarially robust deep RL for continuous control: train, attack, evaluate.",
)
# Piped or logged output keeps whole table rows (rich would squeeze them to 80 columns).
_WIDTH = None if sys.stdout.isatty() else 200
console = Console(width=_WIDTH)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)


def _one_torch_thread() -> None:
    """Use one intra-op thread, as training does (``torch_threads``). robustpo's networks are
    64-64 MLPs: two threads are no faster on an idle machine, and up to 10x slower when other
    processes share the cores (idle OpenMP threads spin), as measured on the 2-core VM."""
    import torch

    torch.set_num_threads(1)


@app.command()
def train(
    algo: Annotated[str, typer.Option(help="Algorithm (see `robustpo list`).")] = "ppo",
    env: Annotated[str, typer.Option(help="Gymnasium environment id.")] = "Hopper-v5",
    steps: Annotated[int | None, typer.Option(
        help="Environment steps (default: preset); with --resume, a TD3-family run's new "
             "budget.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default 0).")] = None,
    out: Annotated[Path | None, typer.Option(help="Run directory to create.")] = None,
    preset: Annotated[str | None, typer.Option(
        help="Preset name, YAML file, or 'defaults' (default: the bundled <algo>-<env>).")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Override a config key: --set policy_lr=1e-4 or ppo.policy_lr=1e-4 "
                      "(repeatable).")] = None,
    resume: Annotated[Path | None, typer.Option(
        help="Continue an interrupted run from its newest checkpoint (or a finished TD3-family "
             "run, with a larger --steps).")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    dry_run: Annotated[bool, typer.Option(
        help="Print the resolved config and where each value came from; train nothing.")
    ] = False,
) -> None:
    """Train an agent; leaves a run directory with config, logs, checkpoints and the agent."""
    from .training.presets import parse_set_options

    overrides = parse_set_options(set_ or [])
    if steps is not None and steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {steps}.")
    if dry_run:
        from .core.envs import make_env

        make_env(env).close()  # the spaces a real run would refuse, refused now
        _print_config(algo, env, preset, overrides, seed, steps)
        return
    from .training.driver import train as run_training

    result = run_training(
        algo, env, steps=steps, seed=seed, out=out, preset=preset,
        overrides=overrides, resume=resume, progress=progress,
    )
    console.print(
        f"Trained {result.global_step:,} steps ({result.iterations} iterations). "
        f"Run directory: [bold]{result.run_dir}[/bold]  ->  robustpo eval {result.run_dir}"
    )


def _print_config(algo: str, env: str, preset: str | None, overrides: dict, seed: int | None,
                  steps: int | None) -> None:
    from .training.presets import describe, resolve_config_with_sources

    cfg, sources = resolve_config_with_sources(algo, env, preset=preset, overrides=overrides,
                                               seed=seed, total_steps=steps)
    iterations = cfg.learner_config.iterations
    table = Table(title=f"Resolved config: {algo} on {env} ({iterations} iterations)")
    for col in ("key", "value", "from", "meaning"):
        table.add_column(col, overflow="fold")
    for row in describe(cfg, sources):
        table.add_row(*row)
    console.print(table)


def _check_eval_values(episodes: int, eps: float | None, eps_values: list[float] = (),
                       protocol: str = "quick", seed: int = 0) -> None:
    """Reject bad --episodes / --eps / --protocol / --seed values before any work starts."""
    if seed < 0:
        raise ConfigError(f"--seed must be 0 or more (episode j starts from reset(seed=SEED + "
                          f"j)); got {seed}.")
    from .attacks.base import PROTOCOLS
    from .evaluation.episodes import check_eval_args

    if protocol not in PROTOCOLS:
        raise UnknownNameError("protocol", protocol, list(PROTOCOLS))
    for e in [0.0 if eps is None else eps, *eps_values]:
        check_eval_args(episodes, e)


# A run directory's state, which no command's output may replace, and its result files,
# which only eval and attack write.
_RUN_STATE_FILES = ("config.yaml", "meta.json", "metrics.csv", "agent.json",
                    "agent.safetensors")
_RESULT_FILES = ("eval.json", "eval.csv")


def _is_run_state(path: Path) -> bool:
    """A run's config, metadata, learning curve, agent, checkpoint or any weights file."""
    return (path.name in _RUN_STATE_FILES or path.suffix == ".safetensors"
            or path.parent.name == "checkpoints")


def _is_result(path: Path) -> bool:
    return path.name in _RESULT_FILES or (
        path.name.startswith(("attack", "robustness_curve")) and path.suffix in (".json", ".csv"))


def _check_outputs(*paths: Path | None, keep_run_files: bool = False) -> None:
    """Fail before any work when a result file cannot be written there: an attack can take an
    hour, and its result must not be lost at the end. Creates missing parent directories.

    Args:
        paths: the files the command will write (None: not written).
        keep_run_files: also refuse a run's result files (attack and eval results), for
            commands whose output is of another kind.

    Raises:
        ConfigError: a path is an existing file of a run's state (config, metadata, metrics,
            agent, checkpoints, weights) or, with ``keep_run_files``, one of its results; a
            path is a directory, a parent is a file, or its directory cannot be created or
            written.
    """
    for path in paths:
        if path is None:
            continue
        if path.is_file() and (_is_run_state(path) or (keep_run_files and _is_result(path))):
            raise ConfigError(f"{path} is one of a run directory's own files, and writing there "
                              f"would replace it. Choose another output path.")
        existing = next(p for p in (path.parent, *path.parent.parents) if p.exists())
        if not existing.is_dir():
            raise ConfigError(f"Cannot write {path}: {existing} is a file, not a directory. "
                              f"Choose another path.")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"Cannot write {path}: {exc.strerror} ({exc.filename}). Choose "
                              f"another path.") from None
        if path.is_dir() or not os.access(path.parent, os.W_OK):
            why = "it is a directory" if path.is_dir() else "its directory is not writable"
            raise ConfigError(f"Cannot write {path}: {why}. Choose another path.")


def _agent_eps(agent, what: str) -> float:
    """The default attack eps: the agent's own, else its task's preset eps (said aloud).

    Raises:
        ConfigError: neither is known; the user must pass --eps.
    """
    if agent.attack_eps is not None:
        return agent.attack_eps
    from .training.presets import preset_names, resolve_config

    if f"ppo-{agent.env_id}" not in preset_names():
        raise ConfigError(f"{what} records no attack eps and {agent.env_id} has no preset eps; "
                          f"pass --eps E (normalised observation units).")
    eps = resolve_config("ppo", agent.env_id).attack_eps
    console.print(f"{what} records no attack eps: using {eps:g}, robustpo's preset eps for "
                  f"{agent.env_id}.")
    return eps


@app.command("eval")
def eval_(
    run_dir: Annotated[Path, typer.Argument(help="Run directory, agent.json or checkpoint.")],
    episodes: Annotated[int, typer.Option(help="Episodes per evaluation.")] = 50,
    attack: Annotated[str, typer.Option(
        help="Attack name (none, random, critic, mad, rs, sarl, paad; see `robustpo list`) or "
             "a comma-separated list.")] = "none",
    eps: Annotated[float | None, typer.Option(
        help="l_inf radius on normalised observations (default: the agent's eps).")] = None,
    json_: Annotated[Path | None, typer.Option(
        "--json", help="Write results as JSON here (default RUN_DIR/eval.json).")] = None,
    csv: Annotated[Path | None, typer.Option(
        help="Write results as CSV here (default RUN_DIR/eval.csv).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the first episode.")] = 0,
    protocol: Annotated[str, typer.Option(
        help="Learned attacks' budgets and search: quick (one configuration, 500k steps; the "
             "worst case is an upper bound) or paper (the reference protocol's scans).")
    ] = "quick",
    force: Annotated[bool, typer.Option(
        help="Replace RUN_DIR/eval.json even when it holds more (other attacks, more "
             "episodes, the paper protocol, another eps) than this run will.")] = False,
) -> None:
    """Evaluate a trained agent: natural return, and the return under the attack."""
    _one_torch_thread()
    from .agents.agent import load_agent
    from .results.suite import resolve_attack_names, run_suite
    from .results.tables import print_results, write_csv, write_json

    _check_eval_values(episodes, eps, protocol=protocol, seed=seed)
    _check_outputs(json_, csv)
    names = resolve_attack_names(attack) if attack.strip() not in ("", "none") else []
    agent = load_agent(run_dir)
    base = run_dir if run_dir.is_dir() else run_dir.parent
    if eps is None:
        eps = _agent_eps(agent, str(run_dir)) if names else 0.0
    json_path, csv_path = json_ or base / "eval.json", csv or base / "eval.csv"
    if json_ is None and not force:
        _check_result_not_lost(json_path, names, episodes, eps, protocol)
    with console.status(f"{agent.env_id}: {episodes} episodes, attacks {', '.join(names)}"):
        suite = run_suite(agent, names, eps, episodes, seed, cache_dir=base / "attacks",
                          protocol=protocol)
    results = [suite.natural, *suite.attacks.values()]
    print_results(results, f"{agent.env_id}: {run_dir}")
    write_json(results, json_path, {"run": str(run_dir), "protocol": protocol})
    write_csv(results, csv_path)
    console.print(f"Wrote {json_path} and {csv_path}")


@app.command()
def select(
    run_dir: Annotated[Path, typer.Argument(
        help="Run directory trained with run.keep_best (best/ and last/), or an exported agent "
             "directory (the best-evaluated policy at its root, the last in last/).")],
    episodes: Annotated[int, typer.Option(
        help="Fresh episodes per candidate (seeds 200,000 onwards).")] = 50,
) -> None:
    """Make the better of the best-evaluated and the last policy the run's agent, measured on
    fresh episodes (what run.select_episodes does at the end of training)."""
    _one_torch_thread()
    from .training.selection import select_final_policy

    with console.status(f"{run_dir}: best and last policy, {episodes} episodes each"):
        selection = select_final_policy(run_dir, episodes)
    for name, mean, ci in (("best", selection.best_return, selection.best_ci),
                           ("last", selection.last_return, selection.last_ci)):
        mark = "  <- the run's agent" if name == selection.kept else ""
        console.print(f"{name}: {mean:8.1f}  [{ci[0]:.1f}, {ci[1]:.1f}]{mark}")


@app.command()
def attack(
    run_dir: Annotated[Path | None, typer.Argument(
        help="Run directory, agent.json or checkpoint (omit with --sb3).")] = None,
    attacks: Annotated[str, typer.Option(
        help="'all' or a comma-separated list of attack names (see `robustpo list`).")] = "all",
    target: Annotated[str, typer.Option(
        help="What the attacks perturb: observation, or action (the executed action, within "
             "eps half-ranges of the policy's).")] = "observation",
    eps: Annotated[float | None, typer.Option(
        help="l_inf radius: normalised observation units (default: the agent's eps), or "
             "half-ranges of the action space with --target action (default 0.1).")] = None,
    eps_sweep: Annotated[str | None, typer.Option(
        help="Comma-separated eps values for a robustness curve, e.g. 0,0.025,0.05.")] = None,
    episodes: Annotated[int, typer.Option(help="Episodes per evaluation.")] = 50,
    json_: Annotated[Path | None, typer.Option(
        "--json", help="Write the table as JSON here (default RUN_DIR/attack.json, "
                       "RUN_DIR/attack-action.json with --target action).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the first episode and the attacks.")] = 0,
    protocol: Annotated[str, typer.Option(
        help="Learned attacks' budgets and search: quick (one configuration, 500k steps; the "
             "worst case is an upper bound) or paper (the reference protocol's scans).")
    ] = "quick",
    sb3: Annotated[Path | None, typer.Option(
        help="Attack a Stable-Baselines3 PPO/SAC/TD3 model.zip instead of a robustpo run; eps "
             "then applies to the model's input (VecNormalize-normalised or raw).")] = None,
    env: Annotated[str | None, typer.Option(help="Environment of the --sb3 model.")] = None,
    vecnormalize: Annotated[Path | None, typer.Option(
        help="VecNormalize.save() file of the --sb3 model, if it was trained with one.")] = None,
    pgd_steps: Annotated[int | None, typer.Option(
        help="PGD steps of the min-q and min-oa-q action attacks (default 10, each eps/steps "
             "half-ranges); more steps check whether a 10-step attack overestimates "
             "robustness.")] = None,
    force: Annotated[bool, typer.Option(
        help="Replace the run's result file even when it holds more (other attacks, more "
             "episodes, the paper protocol, another eps) than this run will.")] = False,
) -> None:
    """Attack a trained agent with a suite of attacks: natural return, the return under each
    attack, and the worst case (or a robustness curve over --eps-sweep)."""
    _one_torch_thread()
    import json

    from .agents.agent import load_agent
    from .attacks.base import ACTION_EPS
    from .io.checkpoint import atomic_write_text
    from .results.suite import RESULT_FILES, resolve_attack_names, robustness_curve, run_suite
    from .results.tables import curve_table, suite_table, write_curve_csv

    names = resolve_attack_names(attacks, target)
    eps_values = _parse_eps_sweep(eps_sweep) if eps_sweep is not None else []
    _check_eval_values(episodes, eps, eps_values, protocol, seed)
    _check_outputs(json_)
    if env is not None and sb3 is None:
        raise ConfigError("--env applies to --sb3 models only; a robustpo agent is attacked on "
                          "the environment it was trained on.")
    if pgd_steps is not None and (pgd_steps < 1 or target != "action"):
        raise ConfigError(f"--pgd-steps must be a positive number of steps and applies to "
                          f"--target action (min-q, min-oa-q); got {pgd_steps} with --target "
                          f"{target}.")
    if sb3 is not None:
        from .agents.sb3 import load_sb3_victim

        if env is None or run_dir is not None:
            raise ConfigError("--sb3 needs --env ENV_ID and no RUN_DIR, e.g. `robustpo attack "
                              "--sb3 model.zip --env Hopper-v5 --eps 0.075`.")
        agent = load_sb3_victim(sb3, env, vecnormalize)
        base = sb3.parent / f"{sb3.stem}-robustpo"  # learned attackers and tables go here
        base.mkdir(parents=True, exist_ok=True)
        run_dir = sb3
        what = (f"The Stable-Baselines3 model (eps applies to its "
                f"{'normalised' if vecnormalize else 'raw'} observations)")
    elif run_dir is None:
        raise ConfigError("Give a RUN_DIR, or --sb3 MODEL.zip --env ENV_ID.")
    else:
        agent = load_agent(run_dir)
        base = run_dir if run_dir.is_dir() else run_dir.parent
        what = str(run_dir)
    if eps_sweep is not None:
        with console.status(f"{agent.env_id}: robustness curve over {len(eps_values)} eps"):
            curve = robustness_curve(agent, names, eps_values, episodes, seed,
                                     base / "attacks", protocol, target, pgd_steps)
        console.print(curve_table(curve, f"{agent.env_id}: mean return vs {target} eps "
                                         f"({run_dir})"))
        json_path = json_ or base / ("robustness_curve.json" if target == "observation"
                                     else f"robustness_curve-{target}.json")
        atomic_write_text(json_path, json.dumps([s.to_json() for s in curve], indent=1))
        write_curve_csv(curve, json_path.with_suffix(".csv"))
    else:
        if eps is None:
            eps = _agent_eps(agent, what) if target == "observation" else ACTION_EPS
        json_path = json_ or base / RESULT_FILES[target]
        if json_ is None and not force:
            _check_result_not_lost(json_path, names, episodes, eps, protocol)
        with console.status(f"{agent.env_id}: {len(names)} attacks x {episodes} episodes"):
            suite = run_suite(agent, names, eps, episodes, seed, cache_dir=base / "attacks",
                              protocol=protocol, target=target, pgd_steps=pgd_steps)
        console.print(suite_table(suite, f"{agent.env_id}: {run_dir} ({target} attacks)"))
        atomic_write_text(json_path, json.dumps(suite.to_json(), indent=1))
    console.print(f"Wrote {json_path}")


def _check_result_not_lost(path: Path, names: list[str], episodes: int, eps: float,
                           protocol: str) -> None:
    """Refuse to replace a run's result (``robustpo attack``'s suite JSON or ``robustpo
    eval``'s eval.json) with one that holds less: its learned attacks may have taken hours.
    A result of the same attacks at the same eps, or a quick-protocol result re-measured with
    the paper protocol, is replaced.

    Raises:
        ConfigError: ``path`` holds attacks this run leaves out, more episodes, the paper
            protocol where this run uses the quick one, or another eps.
    """
    if (stored := _stored_result(path)) is None:
        return
    old_names, old_episodes, old_eps, old_protocol = stored
    lost = []
    if missing := sorted(old_names - set(names)):
        lost.append(f"the attacks {', '.join(missing)}")
    if old_episodes > episodes:
        lost.append(f"{old_episodes} episodes per attack (this run: {episodes})")
    if old_protocol == "paper" and protocol != "paper" and old_names:
        lost.append("the paper protocol's learned attacks (this run: quick)")
    if old_names and names and not math.isclose(old_eps, eps, rel_tol=1e-9, abs_tol=1e-12):
        lost.append(f"eps {old_eps:g} (this run: {eps:g})")
    if lost:
        raise ConfigError(f"{path} holds a result this run would replace with less: "
                          f"{'; '.join(lost)}. Write this run elsewhere with --json FILE, or "
                          f"pass --force to replace it.")


def _stored_result(path: Path) -> tuple[set[str], int, float, str] | None:
    """(attack names, episodes, eps, protocol) of the result stored at ``path``, from either
    file format, or None when there is none robustpo can read."""
    import json

    if not path.is_file():
        return None
    try:
        old = json.loads(path.read_text())
        if "results" in old:  # robustpo eval: one entry per evaluation, "none" is natural
            attacked = [r for r in old["results"] if r["attack"] != "none"]
            episodes = max(int(r["episodes"]) for r in old["results"])
            eps = float(attacked[0]["eps"]) if attacked else 0.0
            return {r["attack"] for r in attacked}, episodes, eps, old.get("protocol", "quick")
        return (set(old["attacks"]), int(old["episodes"]), float(old["eps"]),
                old.get("protocol", "quick"))
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None  # not a result robustpo can read: nothing to compare with


def _parse_eps_sweep(text: str) -> list[float]:
    try:
        values = [float(e) for e in text.split(",") if e.strip()]
    except ValueError:
        raise ConfigError(f"--eps-sweep expects numbers separated by commas, got "
                          f"{text!r}.") from None
    if not values:
        raise ConfigError("--eps-sweep needs at least one eps, e.g. 0,0.05,0.1.")
    return values


@app.command("list")
def list_() -> None:
    """List algorithms, environments, attacks and presets."""
    from .adversaries import method_class, method_names
    from .attacks import attack_descriptions
    from .core.envs import continuous_env_ids
    from .training.presets import preset_names

    table = Table(title="robustpo")
    table.add_column("kind")
    table.add_column("names")
    table.add_row("algorithms", "\n".join(f"{m}: {method_class(m).description}"
                                          for m in method_names()))
    table.add_row("environments", ", ".join(continuous_env_ids())
                  + " (and any Gymnasium id with Box spaces)")
    table.add_row("observation attacks", "\n".join(
        f"{k}: {v}" for k, v in attack_descriptions("observation").items()))
    table.add_row("action attacks (--target action)", "\n".join(
        f"{k}: {v}" for k, v in attack_descriptions("action").items()))
    table.add_row("presets", ", ".join(preset_names()))
    console.print(table)


@app.command()
def compare(
    run_dirs: Annotated[list[Path], typer.Argument(
        help="Run directories, each evaluated by `robustpo attack RUN --attacks all`.")],
    markdown: Annotated[Path | None, typer.Option(
        help="Also write the table as markdown here.")] = None,
    target: Annotated[str, typer.Option(
        help="Compare the observation-attack suites (attack.json) or the action-attack ones "
             "(attack-action.json).")] = "observation",
    results: Annotated[str | None, typer.Option(
        help="File name of the suite result in each run directory, for suites written with "
             "--json, e.g. attack-action-eps0.2.json (default: the --target's file).")] = None,
) -> None:
    """Natural and worst-case returns of many agents grouped by method, median agent (median
    worst-case return) marked, as robust-RL papers report them; then per method the median
    natural return and the median agent's worst case, as ratios to the first method listed;
    then per method the mean and standard deviation over its agents of each column."""
    from .attacks.base import TARGETS
    from .io.checkpoint import atomic_write_text
    from .results.compare import (
        markdown_table,
        per_attack_table,
        read_agent,
        rich_table,
        summary_table,
    )

    if target not in TARGETS:
        raise UnknownNameError("attack target", target, list(TARGETS))
    _check_outputs(markdown, keep_run_files=True)
    rows = [read_agent(d, target, results) for d in run_dirs]
    console.print(rich_table(rows))
    console.print(summary_table(rows))
    console.print(per_attack_table(rows))
    if markdown is not None:
        atomic_write_text(markdown, markdown_table(rows) + "\n")
        console.print(f"Wrote {markdown}")


@app.command()
def report(
    run_dirs: Annotated[list[Path], typer.Argument(
        help="Run directories (with metrics.csv; attack.json, attack-action.json and eps "
             "sweeps where present).")],
    out: Annotated[Path, typer.Option(help="HTML file to write.")] = Path("report.html"),
    title: Annotated[str, typer.Option(help="Page title.")] = "robustpo report",
) -> None:
    """One self-contained HTML page of many runs: training curves by method with seed bands,
    natural vs worst-case returns, per-attack bars with 95% CIs, robustness curves, rliable
    aggregates (IQM, median, mean; probability of improvement; performance profiles) and a
    table of all runs with their configs. Figures also as PNG and SVG."""
    from .report.page import build_report

    _check_outputs(out, keep_run_files=True)
    with console.status(f"Reading {len(run_dirs)} runs and drawing the figures"):
        path = build_report(run_dirs, out, title)
    console.print(f"Wrote {path} (figures in {path.parent / (path.stem + '_figures')})")


@app.command()
def sweep(
    study_file: Annotated[Path, typer.Argument(help="Study YAML file (docs/sweeps.md).")],
    address: Annotated[str | None, typer.Option(
        help="An existing Ray cluster ('auto' on its head node, or HOST:PORT); default: a "
             "local Ray on this machine's cores.")] = None,
    max_concurrent: Annotated[int | None, typer.Option(
        help="At most this many trials at once (default: as the CPUs allow).")] = None,
    resume: Annotated[bool, typer.Option(
        help="Continue an interrupted study: finished trials are kept, the others continue "
             "from their checkpoints.")] = False,
    dry_run: Annotated[bool, typer.Option(help="List the trials; run nothing.")] = False,
) -> None:
    """Run a study on Ray Tune: every trial (method x env x seed x config values) trains into
    a run directory and runs the attack suite; at the end, the compare table and the HTML
    report of the study. Needs `pip install 'robustpo[sweep]'`."""
    from .sweep.study import load_study

    study = load_study(study_file)
    if dry_run:
        _print_study(study)
        return
    from .sweep.tuner import run_study

    result = run_study(study, address=address, max_concurrent=max_concurrent, resume=resume)
    dirs = result.run_dirs
    console.print(f"Study {study.name}: {len(dirs)} finished trials in {study.out}")
    if result.best is not None:
        best_dir, value, values = result.best
        console.print(f"Best {study.search.metric} ({study.search.mode}): {value:.6g} with "
                      f"{values} -> {best_dir}")
    if not dirs:
        return
    if study.attack is not None:
        from .io.checkpoint import atomic_write_text
        from .results.compare import markdown_table, read_agent, rich_table

        rows = [read_agent(d, study.attack.target) for d in dirs]
        console.print(rich_table(rows))
        atomic_write_text(study.out / "results.md", markdown_table(rows) + "\n")
    from .report.page import build_report

    with console.status("Writing the report"):
        path = build_report(dirs, study.out / "report.html", f"robustpo study {study.name}")
    console.print(f"Wrote {path}" + (f" and {study.out / 'results.md'}" if study.attack else ""))


def _print_study(study: Study) -> None:
    """The ``--dry-run`` listing: each grid trial, or the search space, and the attack."""
    table = Table(title=f"Study {study.name} -> {study.out}")
    table.add_column("trial")
    table.add_column("grid values")
    if study.search is None:
        for trial in study.trials():
            table.add_row(trial.name, ", ".join(f"{k}={v}" for k, v in trial.varied.items()))
    else:
        s = study.search
        space = ", ".join(f"{k}~{kind}{list(args)}" for k, (kind, args) in s.space.items())
        table.add_row(f"{s.samples} samples ({s.algorithm}, scheduler {s.scheduler}) x "
                      f"{len(study.methods) * len(study.envs) * len(study.seeds)}", space)
    attack = study.attack
    console.print(table)
    console.print("attack: " + (f"{', '.join(attack.attacks)} ({attack.protocol} protocol, "
                                f"{attack.target}, {attack.episodes} episodes)"
                                if attack else "none"))


@app.command()
def landscape(
    run_dir: Annotated[Path, typer.Argument(help="The agent at the centre of the slice.")],
    between: Annotated[Path | None, typer.Option(
        help="A second agent: slice along the line from RUN_DIR (0) to it (1).")] = None,
    attack: Annotated[str | None, typer.Option(
        help="Also the return under this attack (random, critic or mad).")] = None,
    eps: Annotated[float | None, typer.Option(help="Attack eps (default: the agent's).")] = None,
    points: Annotated[int, typer.Option(help="Points per direction.")] = 11,
    span: Annotated[float, typer.Option(
        help="Steps from -span to span (between: from -span to 1 + span).")] = 0.25,
    two_d: Annotated[bool, typer.Option(
        "--2d", help="A 2-D slice (a second random direction).")] = False,
    episodes: Annotated[int, typer.Option(help="Episodes per point.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed of the directions and episodes.")] = 0,
    out: Annotated[Path | None, typer.Option(
        help="Output path without suffix (default RUN_DIR/landscape).")] = None,
) -> None:
    """The natural return (and the return under --attack) along 1-D or 2-D slices of the
    actor's parameter space around an agent, in filter-normalised random directions (Li et
    al. 2018), or along the line to a second agent; writes JSON, PNG and SVG."""
    _one_torch_thread()
    import json

    import numpy as np
    import torch

    from .agents.agent import load_agent
    from .analysis.landscape import direction_between, filter_normalized_direction
    from .analysis.landscape import landscape as run_landscape
    from .analysis.landscape_figure import landscape_figure
    from .io.checkpoint import atomic_write_text

    _check_eval_values(episodes, eps)
    if points < 2:
        raise ConfigError(f"--points must be at least 2, got {points}.")
    if not (math.isfinite(span) and span > 0) or seed < 0:
        raise ConfigError(f"--span must be a finite number > 0 and --seed >= 0, got {span} and "
                          f"{seed}.")
    base = out or (run_dir if run_dir.is_dir() else run_dir.parent) / "landscape"
    _check_outputs(*(base.parent / f"{base.name}{suffix}" for suffix in (".json", ".png", ".svg")),
                   keep_run_files=True)
    agent = load_agent(run_dir)
    generator = torch.Generator().manual_seed(seed)
    if between is not None:
        directions = [direction_between(agent, load_agent(between))]
        grids = [np.linspace(-span, 1 + span, points)]
        labels = [f"step from {run_dir} (0) to {between} (1)"]
    else:
        directions = [filter_normalized_direction(agent, generator)]
        grids = [np.linspace(-span, span, points)]
        labels = ["filter-normalised direction 1"]
    if two_d:
        directions.append(filter_normalized_direction(agent, generator))
        grids.append(np.linspace(-span, span, points))
        labels.append("filter-normalised direction 2")
    total = int(np.prod([len(g) for g in grids]))
    with console.status(f"{total} points x {episodes} episodes"
                        f"{'' if attack is None else f' (and under {attack})'}"):
        result = run_landscape(agent, directions, grids, episodes, attack, eps, seed)
    json_path = base.parent / f"{base.name}.json"
    atomic_write_text(json_path, json.dumps({
        "run": str(run_dir), "between": None if between is None else str(between),
        "attack": attack, "eps": agent.attack_eps if eps is None else eps,
        "episodes": episodes, "seed": seed, "axes": labels,
        "points": [{"coords": p.coords, "natural": p.natural, "attacked": p.attacked}
                   for p in result]}, indent=1))
    paths = landscape_figure(result, base, f"{agent.env_id}: {run_dir}", attack, tuple(labels))
    console.print(f"Wrote {json_path}, {', '.join(str(p) for p in paths)}")


@app.command()
def toy(
    out: Annotated[Path, typer.Option(help="Directory for toy.json, toy.png, toy.svg.")] = Path(
        "toy-isamdp"),
    r_safe: Annotated[list[float] | None, typer.Option(
        help="Reward of the safe exit (repeat the option for a sweep; default 0.35).")] = None,
    length: Annotated[int, typer.Option(help="Corridor length L.")] = 3,
    inits: Annotated[int, typer.Option(help="Initial policies per method.")] = 300,
    iterations: Annotated[int, typer.Option(help="Exact gradient-ascent steps.")] = 100,
    lr: Annotated[float, typer.Option(help="Step size.")] = 30.0,
    kappa: Annotated[float, typer.Option(help="SPO guidance weight.")] = 0.3,
    seed: Annotated[int, typer.Option(help="Seed of the initial policies.")] = 0,
) -> None:
    """The toy ISA-MDP: exact policy-gradient ascent of SPO, ARPO and BARPO (and the paper's
    guidance variants) from the same random initial policies; the fraction of them ending at
    the robust optimum, at a vulnerable optimum, or deceived at the safe exit."""
    import json

    from rich.table import Table

    from .analysis.toy_figure import toy_figure
    from .analysis.toy_isamdp import OUTCOMES, corridor_trap, run_toy
    from .io.checkpoint import atomic_write_text

    if min(inits, iterations, length) < 1 or not (math.isfinite(lr) and lr > 0) or not (
            math.isfinite(kappa) and kappa >= 0):
        raise ConfigError(f"--inits, --iterations and --length must be >= 1, --lr a finite "
                          f"number > 0 and --kappa a finite number >= 0; got {inits}, "
                          f"{iterations}, {length}, {lr} and {kappa}.")
    _check_outputs(*(out / name for name in ("toy.json", "toy.png", "toy.svg")),
                   keep_run_files=True)
    results = {}
    for value in r_safe or [0.35]:
        try:
            mdp = corridor_trap(length, value)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        with console.status(f"r_safe {value:g}: {inits} initial policies per method"):
            results[value] = run_toy(mdp, inits, iterations, lr, kappa=kappa, seed=seed)
        table = Table(title=f"Toy ISA-MDP, L {length}, r_safe {value:g}, V* "
                            f"{results[value].optimum:.3f}: fraction of {inits} initial policies")
        for column in ("method", *OUTCOMES, "mean natural", "mean worst"):
            table.add_column(column, justify="left" if column == "method" else "right")
        result = results[value]
        for method, fractions in result.fractions().items():
            table.add_row(method, *(f"{fractions[o]:.2f}" for o in OUTCOMES),
                          f"{result.natural[method].mean():.3f}",
                          f"{result.worst[method].mean():.3f}")
        console.print(table)
    atomic_write_text(out / "toy.json", json.dumps({
        "config": {"length": length, "inits": inits, "iterations": iterations, "lr": lr,
                   "kappa": kappa, "seed": seed},
        "results": {str(k): {"optimum": r.optimum, "fractions": r.fractions()}
                    for k, r in results.items()}}, indent=1))
    paths = toy_figure(results, out / "toy")
    console.print(f"Wrote {out / 'toy.json'}, {', '.join(str(p) for p in paths)}")


DEMO_ATTACKS = ["random", "critic", "mad"]


def _zoo_agent_dir(name: str) -> Path | None:
    """``zoo/<name>`` in the working directory or in the source checkout, if present."""
    for base in (Path("zoo"), Path(__file__).resolve().parents[2] / "zoo"):
        if (base / name / "agent.json").is_file():
            return base / name
    return None


@app.command()
def demo(
    out: Annotated[Path | None, typer.Option(help="Run directory.")] = None,
    steps: Annotated[int, typer.Option(help="BAR-PPO training steps.")] = 600_000,
    episodes: Annotated[int, typer.Option(help="Evaluation episodes per row.")] = 30,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """The main job on defaults: train BAR-PPO on Hopper-v5 briefly, then attack it beside the
    zoo's PPO and 2M-step BAR-PPO agents (natural return, random, critic and MAD attacks at
    eps 0.075), and write the HTML report of what it ran."""
    _one_torch_thread()
    import json

    from .agents.agent import load_agent
    from .io.checkpoint import atomic_write_text
    from .report.page import build_report
    from .results.suite import run_suite
    from .results.tables import comparison_table
    from .training.driver import train as run_training

    _check_eval_values(episodes, None)
    if steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {steps}.")
    out = out or Path("runs") / f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    console.print(f"[bold]1/2[/bold] Training BAR-PPO on Hopper-v5 for {steps:,} steps -> {out}")
    result = run_training("barppo", "Hopper-v5", steps=steps, seed=seed, out=out)
    eps = result.agent.attack_eps
    zoo = {label: _zoo_agent_dir(name) for label, name in (
        ("PPO, 2M steps (zoo)", "ppo-Hopper-v5"), ("BAR-PPO, 2M steps (zoo)", "barppo-Hopper-v5"))}
    agents = {label: load_agent(path) for label, path in zoo.items() if path is not None}
    agents[f"BAR-PPO, {steps:,} steps (this run)"] = result.agent
    if len(agents) == 1:
        console.print("zoo/ not found: evaluating the new agent alone.")
    console.print(f"[bold]2/2[/bold] Attacking: {episodes} deterministic episodes per cell, "
                  f"eps {eps:g} on normalised observations")
    suites = {}
    for label, agent in agents.items():
        with console.status(f"{label}: natural, {', '.join(DEMO_ATTACKS)}"):
            suites[label] = run_suite(agent, DEMO_ATTACKS, eps, episodes, seed)
    console.print(comparison_table(suites, "Hopper-v5: mean return [95% CI] under attack"))
    atomic_write_text(out / "demo.json", json.dumps(
        {label: s.to_json() for label, s in suites.items()}, indent=1))
    with console.status("Writing the report"):
        report = build_report([*(p for p in zoo.values() if p is not None), out],
                              out / "report.html", "robustpo demo: BAR-PPO on Hopper-v5")
    console.print(
        f"Run directory {out}: config.yaml, meta.json, metrics.csv, tb/ (tensorboard --logdir "
        f"{out / 'tb'}), agent.safetensors, demo.json, and {report.name}: the zoo agents' "
        f"full six-attack suites beside this run's training curves (open it in a browser). "
        f"This run's full suite: robustpo attack {out}"
    )


def main() -> None:
    """Entry point: one-paragraph messages for known errors instead of tracebacks."""
    try:
        app()  # standalone mode: Typer itself reports usage errors and Ctrl-C
    except RobustpoError as exc:
        err_console.print(f"[bold red]error:[/bold red] {exc}", highlight=False)
        sys.exit(2)
    except OSError as exc:  # a path the user gave cannot be created, read or written
        where = f" ({exc.filename})" if exc.filename else ""
        err_console.print(f"[bold red]error:[/bold red] {exc.strerror or exc}{where}. Check the "
                          f"paths given on the command line.", highlight=False)
        sys.exit(2)
