"""Which worst cases to trust: flags on learned attacks that did not converge, and the
protocol a worst case was measured with.

An optimal state adversary is at least as strong as any other (REFERENCE section 4), so a
learned attack (robust Sarsa, SA-RL, PA-AD) whose return stays above the best non-learned
attack's (random, critic, MAD) did not find it: its 95% CI lies wholly above that return.
Such a row is flagged "did not converge". A worst case measured with the quick protocol
(learned attacks below the field's budgets and search) is an upper bound on the true one.
"""

from __future__ import annotations

from ..attacks import learned_attack_names

QUICK, PAPER = "quick", "paper"
NOT_CONVERGED = "did not converge"


def convergence_flags(means: dict[str, float], ci_low: dict[str, float],
                      seeds_disagree: set[str] | frozenset[str] = frozenset(),
                      target: str = "observation") -> dict[str, str]:
    """``{attack: reason}`` for each learned attack whose return's 95% CI lies above the best
    non-learned attack's mean return, or whose kept configuration's seeds disagree.

    Args:
        means: mean return under each attack of a suite (raw, undiscounted).
        ci_low: the lower end of each attack's 95% CI of the mean.
        seeds_disagree: attacks whose further training seed of the kept configuration
            disagrees with the first (:func:`robustpo.attacks.scan.seeds_disagree`).
        target: what the suite's attacks perturb (``observation`` or ``action``).

    Returns:
        Flags of the learned attacks.
    """
    learned = set(learned_attack_names(target))
    flags = {a: f"{NOT_CONVERGED}: its seeds disagree" for a in means if a in seeds_disagree}
    heuristic = {a: m for a, m in means.items() if a not in learned}
    if heuristic:
        best, best_mean = min(heuristic.items(), key=lambda kv: kv[1])
        for a in means:
            if a in learned and ci_low[a] > best_mean:
                reason = f"95% CI above {best}'s {best_mean:.1f}"
                flags[a] = f"{flags[a]}; {reason}" if a in flags else f"{NOT_CONVERGED}: {reason}"
    return flags


def worst_label(protocol: str) -> str:
    """How to read a worst case measured with ``protocol``: an upper bound unless ``paper``."""
    return "" if protocol == PAPER else f"upper bound ({protocol} protocol)"
