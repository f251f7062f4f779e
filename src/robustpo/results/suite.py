"""An agent's natural return, its return under each attack of a suite, and the worst of them.

The field reports each agent's *worst-case return*: the minimum, over the attacks, of the mean
return under that attack (REFERENCE section 2, "worst"). ``run_suite`` evaluates one eps;
``robustness_curve`` repeats it over a list of eps; :func:`evaluate` is one attack of it.
``robustpo eval`` and ``robustpo attack`` both run through :func:`run_suite`, so learned
attacks are cached the same way for both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..agents.agent import Agent
from ..attacks import Attack, attack_names, make_attack
from ..attacks.base import OBSERVATION
from ..errors import ConfigError, UnknownNameError
from ..evaluation.episodes import EvalResult, check_eval_args, run_episodes
from .convergence import QUICK, convergence_flags, worst_label

SUITE_ORDER = {  # the field's table order
    "observation": ["random", "critic", "mad", "rs", "sarl", "paad"],
    "action": ["random", "biggest", "min-q", "min-oa-q", "learned"],
}
RESULT_FILES = {"observation": "attack.json", "action": "attack-action.json"}
"""Where ``robustpo attack`` writes a run's suite, per target."""


def resolve_attack_names(spec: str, target: str = OBSERVATION) -> list[str]:
    """``"all"`` or a comma-separated list of attack names on ``target`` -> the attack names,
    without ``none``.

    Raises:
        UnknownNameError: a name that is not a registered attack on ``target``, or an unknown
            target.
        ConfigError: ``spec`` names no attack and not ``none`` (e.g. an empty string).
    """
    known = [a for a in attack_names(target=target) if a != "none"]
    if spec.strip() == "all":
        order = SUITE_ORDER[target]
        suite = [a for a in attack_names(suite_only=True, target=target) if a != "none"]
        return sorted(suite, key=lambda a: order.index(a) if a in order else 99)
    tokens = [n.strip() for n in spec.split(",") if n.strip()]
    if not tokens:
        raise ConfigError(f"--attacks names no attack ({spec!r}): give 'all', a comma-separated "
                          f"list of attack names (robustpo list), or 'none' for the natural "
                          f"return alone.")
    names = [n for n in tokens if n != "none"]
    for name in names:
        if name not in known:
            raise UnknownNameError(f"{target} attack", name, ["all", *known])
    return names


def evaluate(
    agent: Agent,
    episodes: int = 50,
    attack: Attack | str | None = None,
    eps: float = 0.0,
    *,
    num_envs: int = 10,
    seed: int = 0,
    env_id: str | None = None,
    cache_dir: Path | None = None,
    protocol: str = QUICK,
    target: str = OBSERVATION,
    pgd_steps: int | None = None,
) -> EvalResult:
    """Run ``episodes`` deterministic episodes of ``agent`` under ``attack``
    (:func:`robustpo.evaluation.episodes.run_episodes`).

    Args:
        agent: the agent to evaluate.
        episodes: number of episodes (>= 1).
        attack: an attack, an attack name, or None for clean evaluation.
        eps: l_inf radius: normalised observation units, or half-ranges of the action space
            for an action attack (ignored by ``none``).
        num_envs: environments stepped side by side.
        seed: seed of the first episode and of a named attack's generator.
        env_id: environment to evaluate on (default: the one the agent was trained on).
        cache_dir: where a named learned attack keeps and reuses its models (None: nowhere).
        protocol: ``quick`` or ``paper``, for a named learned attack (:mod:`.convergence`).
        target: what a named attack perturbs: ``observation`` or ``action``.
        pgd_steps: PGD steps of a named ``min-q`` / ``min-oa-q`` action attack (default 10);
            other attacks ignore it.

    Raises:
        UnknownNameError: unknown attack or environment name.
        ConfigError: ``episodes < 1`` or a negative or non-finite ``eps``.
        PerturbationOutOfBallError: the attack left the eps-ball.
    """
    check_eval_args(episodes, eps)
    if attack is None or isinstance(attack, str):
        attack = make_attack(attack or "none", seed=seed, protocol=protocol, target=target)
        attack.cache_dir = cache_dir
        if pgd_steps is not None and hasattr(attack, "pgd_steps"):
            attack.pgd_steps = pgd_steps
    return run_episodes(agent, attack, eps, episodes, num_envs=num_envs, seed=seed,
                        env_id=env_id)


@dataclass
class SuiteResult:
    """Natural return, the return under each attack at one eps, and the worst attack;
    ``protocol`` says how strong the learned attacks were (quick: below the field's budgets,
    so the worst case is an upper bound)."""

    env: str
    eps: float
    episodes: int
    natural: EvalResult
    attacks: dict[str, EvalResult]
    protocol: str = QUICK
    target: str = OBSERVATION

    @property
    def worst(self) -> tuple[str, float]:
        """``(attack, mean return)`` of the attack with the lowest mean return."""
        name = min(self.attacks, key=lambda a: self.attacks[a].stats.mean)
        return name, self.attacks[name].stats.mean

    def to_json(self) -> dict[str, Any]:
        """The documented JSON form: env, eps, episodes, natural, attacks, worst."""

        def summary(r: EvalResult) -> dict[str, Any]:
            s = r.stats
            out = {"mean": s.mean, "std": s.std, "median": s.median, "ci95": list(s.ci95),
                   "returns": r.returns}
            return {**out, "details": r.details} if r.details else out

        out: dict[str, Any] = {
            "env": self.env, "eps": self.eps, "episodes": self.episodes,
            "natural": summary(self.natural),
            "attacks": {name: summary(r) for name, r in self.attacks.items()},
        }
        if self.attacks:
            name, mean = self.worst
            out["worst"] = {"attack": name, "mean": mean, "upper_bound": bool(
                worst_label(self.protocol))}
            out["flags"] = self.flags
        out["protocol"] = self.protocol
        out["target"] = self.target
        return out

    @property
    def flags(self) -> dict[str, str]:
        """Learned attacks that did not converge (:mod:`robustpo.results.convergence`)."""
        return convergence_flags(
            {a: r.stats.mean for a, r in self.attacks.items()},
            {a: r.stats.ci95[0] for a, r in self.attacks.items()},
            {a for a, r in self.attacks.items() if r.details.get("seeds_disagree")},
            self.target)


def run_suite(
    agent: Agent, attacks: list[str], eps: float, episodes: int = 50, seed: int = 0,
    natural: EvalResult | None = None, cache_dir: Path | None = None, protocol: str = QUICK,
    target: str = OBSERVATION, pgd_steps: int | None = None,
) -> SuiteResult:
    """Evaluate ``agent`` clean and under each named attack at radius ``eps``.

    Args:
        agent: the victim.
        attacks: attack names (see :func:`resolve_attack_names`).
        eps: l_inf radius: normalised observation units, or half-ranges of the action space
            with ``target="action"``.
        episodes: episodes per evaluation; all evaluations use the same episode seeds.
        seed: seed of the first episode and of the attacks' generators.
        natural: a clean evaluation to reuse (robustness curves evaluate it once).
        cache_dir: where learned attacks keep and reuse their models (None: not kept).
        protocol: ``quick`` or ``paper``: the learned attacks' budgets and search.
        target: what the attacks perturb: ``observation`` (eps in normalised units) or
            ``action`` (eps in half-ranges of the action space).
        pgd_steps: PGD steps of ``min-q`` / ``min-oa-q`` (default 10).

    Raises:
        ConfigError: ``episodes < 1``, or ``eps`` negative, NaN or infinite.
        UnknownNameError: an unknown attack or target.
        PerturbationOutOfBallError: an attack left its ball (:class:`ActionOutOfBallError`
            for action attacks); a bug of that attack.
    """
    check_eval_args(episodes, eps)
    natural = natural or evaluate(agent, episodes, "none", 0.0, seed=seed)
    results = {name: evaluate(agent, episodes, name, eps, seed=seed, cache_dir=cache_dir,
                              protocol=protocol, target=target, pgd_steps=pgd_steps)
               for name in attacks}
    return SuiteResult(agent.env_id, float(eps), episodes, natural, results, protocol, target)


def robustness_curve(
    agent: Agent, attacks: list[str], eps_values: list[float], episodes: int = 50, seed: int = 0,
    cache_dir: Path | None = None, protocol: str = QUICK, target: str = OBSERVATION,
    pgd_steps: int | None = None,
) -> list[SuiteResult]:
    """:func:`run_suite` at every eps of ``eps_values`` (the clean evaluation is shared); one
    :class:`SuiteResult` per eps, in order. Raises as :func:`run_suite`, every eps checked
    before the first evaluation."""
    for eps in eps_values:
        check_eval_args(episodes, eps)
    natural = evaluate(agent, episodes, "none", 0.0, seed=seed)
    return [run_suite(agent, attacks, e, episodes, seed, natural, cache_dir, protocol, target,
                      pgd_steps) for e in eps_values]
