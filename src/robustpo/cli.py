"""The ``robustpo`` command line. Thin: it parses arguments and calls the library."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from .errors import RobustpoError

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
    steps: Annotated[int | None, typer.Option(help="Environment steps (default: preset).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default 0).")] = None,
    out: Annotated[Path | None, typer.Option(help="Run directory to create.")] = None,
    preset: Annotated[str | None, typer.Option(help="Preset name or YAML file.")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Override a config key: --set policy_lr=1e-4 (repeatable).")] = None,
    resume: Annotated[Path | None, typer.Option(
        help="Continue an interrupted run from its newest checkpoint.")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Train an agent; leaves a run directory with config, logs, checkpoints and the agent."""
    from .config import parse_set_options
    from .train import train as run_training

    result = run_training(
        algo, env, steps=steps, seed=seed, out=out, preset=preset,
        overrides=parse_set_options(set_ or []), resume=resume, progress=progress,
    )
    console.print(
        f"Trained {result.global_step:,} steps ({result.iterations} iterations). "
        f"Run directory: [bold]{result.run_dir}[/bold]  ->  robustpo eval {result.run_dir}"
    )


def _run_eval(
    run_dir: Path, episodes: int, attacks: list[str], eps: float | None, seed: int
) -> list:
    from .agent import load_agent
    from .evaluate import evaluate

    agent = load_agent(run_dir)
    if eps is None:
        eps = _default_eps(run_dir)
    names = ["none"] + [a for a in attacks if a != "none"]
    results = []
    for name in names:
        with console.status(f"{agent.env_id}: {episodes} episodes, attack {name}"):
            results.append(evaluate(agent, episodes, name, 0.0 if name == "none" else eps,
                                    seed=seed))
    return results


@app.command("eval")
def eval_(
    run_dir: Annotated[Path, typer.Argument(help="Run directory, agent.json or checkpoint.")],
    episodes: Annotated[int, typer.Option(help="Episodes per evaluation.")] = 50,
    attack: Annotated[str, typer.Option(
        help="Attack name (none, random, critic, mad, sarl, paad; see `robustpo list`) or a "
             "comma-separated list.")] = "none",
    eps: Annotated[float | None, typer.Option(
        help="l_inf radius on normalised observations (default: the run's preset eps).")] = None,
    json_: Annotated[Path | None, typer.Option(
        "--json", help="Write results as JSON here (default RUN_DIR/eval.json).")] = None,
    csv: Annotated[Path | None, typer.Option(
        help="Write results as CSV here (default RUN_DIR/eval.csv).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the first episode.")] = 0,
) -> None:
    """Evaluate a trained agent: natural return, and the return under the attack."""
    _one_torch_thread()
    from .report import print_results, write_csv, write_json

    results = _run_eval(run_dir, episodes, [a.strip() for a in attack.split(",")], eps, seed)
    print_results(results, f"{results[0].env}: {run_dir}")
    base = run_dir if run_dir.is_dir() else run_dir.parent
    json_path, csv_path = json_ or base / "eval.json", csv or base / "eval.csv"
    write_json(results, json_path, {"run": str(run_dir)})
    write_csv(results, csv_path)
    console.print(f"Wrote {json_path} and {csv_path}")


@app.command()
def attack(
    run_dir: Annotated[Path | None, typer.Argument(
        help="Run directory, agent.json or checkpoint (omit with --sb3).")] = None,
    attacks: Annotated[str, typer.Option(
        help="'all' or a comma-separated list of attack names (see `robustpo list`).")] = "all",
    eps: Annotated[float | None, typer.Option(
        help="l_inf radius on normalised observations (default: the run's preset eps).")] = None,
    eps_sweep: Annotated[str | None, typer.Option(
        help="Comma-separated eps values for a robustness curve, e.g. 0,0.025,0.05.")] = None,
    episodes: Annotated[int, typer.Option(help="Episodes per evaluation.")] = 50,
    json_: Annotated[Path | None, typer.Option(
        "--json", help="Write the table as JSON here (default RUN_DIR/attack.json).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the first episode and the attacks.")] = 0,
    sb3: Annotated[Path | None, typer.Option(
        help="Attack a Stable-Baselines3 PPO/SAC/TD3 model.zip instead of a robustpo run; eps "
             "then applies to the model's input (VecNormalize-normalised or raw).")] = None,
    env: Annotated[str | None, typer.Option(help="Environment of the --sb3 model.")] = None,
    vecnormalize: Annotated[Path | None, typer.Option(
        help="VecNormalize.save() file of the --sb3 model, if it was trained with one.")] = None,
) -> None:
    """Attack a trained agent with a suite of attacks: natural return, the return under each
    attack, and the worst case (or a robustness curve over --eps-sweep)."""
    _one_torch_thread()
    import json

    from .agent import load_agent
    from .checkpoint import atomic_write_text
    from .errors import ConfigError
    from .report import curve_table, suite_table, write_curve_csv
    from .suite import resolve_attack_names, robustness_curve, run_suite

    names = resolve_attack_names(attacks)
    if sb3 is not None:
        from .config import resolve_config
        from .sb3 import load_sb3_victim

        if env is None or run_dir is not None:
            raise ConfigError("--sb3 needs --env ENV_ID and no RUN_DIR, e.g. `robustpo attack "
                              "--sb3 model.zip --env Hopper-v5 --eps 0.075`.")
        agent = load_sb3_victim(sb3, env, vecnormalize)
        base = sb3.parent / f"{sb3.stem}-robustpo"  # learned attackers and tables go here
        base.mkdir(parents=True, exist_ok=True)
        run_dir = sb3
        if eps is None:
            eps = resolve_config("ppo", env).attack_eps
            console.print(f"eps not given: using {eps:g}, robustpo's preset eps for {env}, on "
                          f"the model's {'normalised' if vecnormalize else 'raw'} observations.")
    elif run_dir is None:
        raise ConfigError("Give a RUN_DIR, or --sb3 MODEL.zip --env ENV_ID.")
    else:
        agent = load_agent(run_dir)
        base = run_dir if run_dir.is_dir() else run_dir.parent
    if eps_sweep is not None:
        try:
            eps_values = [float(e) for e in eps_sweep.split(",") if e.strip()]
        except ValueError:
            raise ConfigError(f"--eps-sweep expects numbers separated by commas, got "
                              f"{eps_sweep!r}.") from None
        with console.status(f"{agent.env_id}: robustness curve over {len(eps_values)} eps"):
            curve = robustness_curve(agent, names, eps_values, episodes, seed,
                                     base / "attacks")
        console.print(curve_table(curve, f"{agent.env_id}: mean return vs eps ({run_dir})"))
        json_path = json_ or base / "robustness_curve.json"
        atomic_write_text(json_path, json.dumps([s.to_json() for s in curve], indent=1))
        write_curve_csv(curve, json_path.with_suffix(".csv"))
    else:
        if eps is None:
            eps = _default_eps(run_dir)
        with console.status(f"{agent.env_id}: {len(names)} attacks x {episodes} episodes"):
            suite = run_suite(agent, names, eps, episodes, seed, cache_dir=base / "attacks")
        console.print(suite_table(suite, f"{agent.env_id}: {run_dir}"))
        json_path = json_ or base / "attack.json"
        atomic_write_text(json_path, json.dumps(suite.to_json(), indent=1))
    console.print(f"Wrote {json_path}")


def _default_eps(run_dir: Path) -> float:
    from .rundir import read_run_config

    return float(read_run_config(run_dir).get("attack_eps", 0.0)) if run_dir.is_dir() else 0.0


@app.command("list")
def list_() -> None:
    """List algorithms, environments, attacks and presets."""
    from .attacks import attack_descriptions
    from .config import ALGORITHMS, preset_names
    from .envs import continuous_env_ids

    table = Table(title="robustpo")
    table.add_column("kind")
    table.add_column("names")
    table.add_row("algorithms", ", ".join(ALGORITHMS))
    table.add_row("environments", ", ".join(continuous_env_ids())
                  + " (and any Gymnasium id with Box spaces)")
    table.add_row("attacks", "\n".join(f"{k}: {v}" for k, v in attack_descriptions().items()))
    table.add_row("presets", ", ".join(preset_names()))
    console.print(table)


@app.command()
def compare(
    run_dirs: Annotated[list[Path], typer.Argument(
        help="Run directories, each evaluated by `robustpo attack RUN --attacks all`.")],
    markdown: Annotated[Path | None, typer.Option(
        help="Also write the table as markdown here.")] = None,
) -> None:
    """Natural and worst-case returns of many agents grouped by method, median agent (median
    worst-case return) marked, as robust-RL papers report them."""
    from .checkpoint import atomic_write_text
    from .compare import group, markdown_table, median_agent, read_agent

    rows = [read_agent(d) for d in run_dirs]
    attacks = list(dict.fromkeys(a for r in rows for a in r.attacks))
    table = Table(title="Mean return per agent; the median agent of each method in bold")
    for col in ["env", "method", "seed", "natural", *attacks, "worst", "by", "drop"]:
        table.add_column(col, justify="left" if col in ("env", "method", "by") else "right")
    for (env, method), members in group(rows).items():
        median = median_agent(members)
        for r in members:
            table.add_row(env, method, str(r.seed), f"{r.natural:.0f}",
                          *(f"{r.attacks[a]:.0f}" if a in r.attacks else "–" for a in attacks),
                          f"{r.worst[1]:.0f}", r.worst[0], f"{r.drop:+.0%}",
                          style="bold" if r is median else None)
    console.print(table)
    if markdown is not None:
        atomic_write_text(markdown, markdown_table(rows) + "\n")
        console.print(f"Wrote {markdown}")


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
    zoo's PPO agent (natural return, random, critic and MAD attacks at eps 0.075)."""
    _one_torch_thread()
    import json

    from .agent import load_agent
    from .checkpoint import atomic_write_text
    from .config import resolve_config
    from .report import comparison_table
    from .suite import run_suite
    from .train import train as run_training

    out = out or Path("runs") / f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    console.print(f"[bold]1/2[/bold] Training BAR-PPO on Hopper-v5 for {steps:,} steps -> {out}")
    result = run_training("barppo", "Hopper-v5", steps=steps, seed=seed, out=out)
    eps = resolve_config("barppo", "Hopper-v5").attack_eps
    agents = {f"BAR-PPO, {steps:,} steps (this run)": result.agent}
    zoo = _zoo_agent_dir("ppo-Hopper-v5")
    if zoo is not None:
        agents = {"PPO, 2M steps (zoo)": load_agent(zoo), **agents}
    else:
        console.print("zoo/ppo-Hopper-v5 not found: evaluating the new agent alone.")
    console.print(f"[bold]2/2[/bold] Attacking: {episodes} deterministic episodes per cell, "
                  f"eps {eps:g} on normalised observations")
    suites = {}
    for label, agent in agents.items():
        with console.status(f"{label}: natural, {', '.join(DEMO_ATTACKS)}"):
            suites[label] = run_suite(agent, DEMO_ATTACKS, eps, episodes, seed)
    console.print(comparison_table(suites, "Hopper-v5: mean return [95% CI] under attack"))
    atomic_write_text(out / "demo.json", json.dumps(
        {label: s.to_json() for label, s in suites.items()}, indent=1))
    console.print(
        f"Run directory {out}: config.yaml, meta.json, metrics.csv, tb/ (tensorboard --logdir "
        f"{out / 'tb'}), agent.safetensors, demo.json. Full six-attack suite: robustpo attack "
        f"{out}"
    )


def main() -> None:
    """Entry point: one-paragraph messages for known errors instead of tracebacks."""
    try:
        app()  # standalone mode: Typer itself reports usage errors and Ctrl-C
    except RobustpoError as exc:
        err_console.print(f"[bold red]error:[/bold red] {exc}", highlight=False)
        sys.exit(2)
