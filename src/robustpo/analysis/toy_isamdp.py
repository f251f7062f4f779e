"""A toy intrinsic state-adversarial MDP (ISA-MDP) in which policy-gradient dynamics are
computed exactly, to show the mechanism the BARPO paper (Li et al., ICLR 2026, arXiv
2512.01228, section 3) gives for the tension between optimality and robustness: SPO reaches
high-return but vulnerable stationary policies, ARPO's strongest adversary carves "sticky"
deceptive stationary points of low return, and BARPO's weaker max-KL inner adversary plus SPO
guidance reaches the robust optimum more often.

The paper's own toy MDP is not published in a form we could retrieve; this one is robustpo's
construction, and the fractions it gives are its own, not the paper's ("about one third" of
initial policies deceived under ARPO).

The MDP (:func:`corridor_trap`). A start state ``hub`` with two actions: ``exit`` ends the
episode with a safe reward ``r_safe``; ``go`` enters a corridor ``c_1 .. c_L``. In a corridor
state ``go`` moves on (the last one ends the episode with reward 1) and ``exit`` falls into a
pit (reward 0). Beside each ``c_i`` lies a decoy ``d_i`` with the same dynamics that the
natural dynamics never reach. The adversary may show the observation ``d_i`` instead of
``c_i`` (the discrete analogue of the eps-ball: ``B(c_i) = {c_i, d_i}``, ``B(s) = {s}``
elsewhere). The optimal action, ``go``, is the same at every state and every observation of
its ball, so the MDP is an ISA-MDP: the Bellman-optimal policy is also the optimal robust
policy, with value ``gamma^L`` against every adversary.

The policy is tabular softmax over observations, ``pi(a|o) = softmax(theta[o])``, initialised
``theta ~ N(0, init_std^2)``; all methods take exact gradient-ascent steps of size ``lr`` on
their objective, for many initialisations at once (float64):

- SPO: ``V^pi(mu_0)``;
- ARPO: ``min_nu V^{pi o nu}(mu_0)``, the strongest adversary solved exactly (policy iteration
  on the adversary's MDP) and held fixed in the gradient (Danskin);
- BARPO: ``V^{pi o nu_KL}(mu_0) + kappa * V^pi(mu_0)``, with the max-KL adversary
  ``nu_KL(s) = argmax_{o in B(s)} KL(pi(.|s) || pi(.|o))`` held fixed (no second-order terms),
  ``kappa * V^pi`` the SPO guidance;
- the paper's two other configurations: ARPO with guidance, BARPO without (:data:`METHODS`).

Each final policy is classed by its natural value and its worst-case value (against the
strongest adversary), relative to the optimum ``V* = gamma^L``: ``robust optimum`` (worst
>= ``tol * V*``), ``vulnerable`` (natural >= ``tol * V*``, worst below), ``deceived`` (in
the start state the optimal action has probability below 1/2: the policy has settled on the
low-value safe exit, where the gradient vanishes), ``unsettled`` (none of these: low natural
value without giving up, e.g. a true-state policy no gradient reaches).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

OUTCOMES = ("robust optimum", "vulnerable", "deceived", "unsettled")
# method -> (inner adversary, SPO guidance): the paper's configurations (section 4).
METHODS: dict[str, tuple[str, bool]] = {
    "spo": ("none", False),
    "arpo": ("strongest", False),
    "arpo+guidance": ("strongest", True),
    "barpo-no-guidance": ("max-kl", False),
    "barpo": ("max-kl", True),
}


@dataclass(frozen=True)
class TabularSAMDP:
    """A finite state-adversarial MDP with rewards on transitions' start.

    Attributes:
        transitions: ``(S, A, S)`` probabilities P(s'|s, a); rows sum to 1.
        rewards: ``(S, A)`` expected reward r(s, a).
        gamma: discount in [0, 1).
        start: ``(S,)`` initial distribution mu_0.
        balls: for each state, the observations the adversary may show (itself included):
            the discrete eps-ball B(s).
        state_names: a name per state, for display.
    """

    transitions: torch.Tensor
    rewards: torch.Tensor
    gamma: float
    start: torch.Tensor
    balls: tuple[tuple[int, ...], ...]
    state_names: tuple[str, ...]

    @property
    def n_states(self) -> int:
        return self.rewards.shape[0]

    @property
    def n_actions(self) -> int:
        return self.rewards.shape[1]

    def values(self, obs_policy: torch.Tensor) -> torch.Tensor:
        """State values ``(N, S)`` of the policies ``obs_policy`` ``(N, S, A)``: row ``s`` is
        the action distribution played in state ``s`` (for an attacked policy, pi(.|nu(s)));
        exact, ``V = (I - gamma P_pi)^-1 r_pi``."""
        p_pi = torch.einsum("nsa,sat->nst", obs_policy, self.transitions)
        r_pi = torch.einsum("nsa,sa->ns", obs_policy, self.rewards)
        eye = torch.eye(self.n_states, dtype=p_pi.dtype)
        return torch.linalg.solve(eye - self.gamma * p_pi, r_pi.unsqueeze(-1)).squeeze(-1)

    def start_value(self, obs_policy: torch.Tensor) -> torch.Tensor:
        """``V(mu_0)``, shape ``(N,)``."""
        return self.values(obs_policy) @ self.start

    def attacked(self, policy: torch.Tensor, adversary: torch.Tensor) -> torch.Tensor:
        """The action distributions ``(N, S, A)`` played when state ``s`` is observed as
        ``adversary[n, s]`` (``(N, S)`` state indices, each inside its ball)."""
        return torch.gather(policy, 1, adversary.unsqueeze(-1).expand_as(policy))

    def _candidates(self) -> torch.Tensor:
        """Balls padded to one width ``(S, K)`` by repeating their first entry."""
        width = max(len(b) for b in self.balls)
        return torch.tensor([list(b) + [b[0]] * (width - len(b)) for b in self.balls])

    def strongest_adversary(self, policy: torch.Tensor, max_iter: int = 100) -> torch.Tensor:
        """The deterministic adversary ``(N, S)`` minimising ``V^{pi o nu}`` at every state
        (hence at mu_0), by policy iteration on the adversary's MDP (finite, exact)."""
        n = policy.shape[0]
        candidates = self._candidates()
        adversary = torch.arange(self.n_states).expand(n, -1).clone()
        with torch.no_grad():
            for _ in range(max_iter):
                v = self.values(self.attacked(policy, adversary))  # (N, S)
                # q_adv[n, s, k]: value in s when showing candidates[s, k]
                shown = policy[:, candidates]  # (N, S, K, A)
                r = torch.einsum("nska,sa->nsk", shown, self.rewards)
                nxt = torch.einsum("nska,sat,nt->nsk", shown, self.transitions, v)
                q_adv = r + self.gamma * nxt
                best = q_adv.argmin(-1)
                improve = q_adv.gather(-1, best.unsqueeze(-1)).squeeze(-1) < v - 1e-12
                if not improve.any():
                    break
                new = candidates[torch.arange(self.n_states), best]
                adversary = torch.where(improve, new, adversary)
        return adversary

    def max_kl_adversary(self, policy: torch.Tensor) -> torch.Tensor:
        """The adversary ``(N, S)`` showing, in each state, the observation of its ball whose
        action distribution is furthest in KL(pi(.|s) || pi(.|o)) (BARPO's inner problem; ties
        to the first, the state itself)."""
        candidates = self._candidates()
        with torch.no_grad():
            own = policy.unsqueeze(2)  # (N, S, 1, A)
            shown = policy[:, candidates]  # (N, S, K, A)
            kl = (own * (own.log() - shown.log())).sum(-1)
            best = kl.argmax(-1)
        return candidates[torch.arange(self.n_states), best]


def corridor_trap(length: int = 3, r_safe: float = 0.35, gamma: float = 0.9
                  ) -> TabularSAMDP:
    """The corridor-with-decoys ISA-MDP of the module docstring: states ``hub, c_1..c_L,
    d_1..d_L, end``; actions ``(go, exit)``; ``gamma^L`` > ``r_safe`` so that ``go`` is
    optimal everywhere.

    Raises:
        ValueError: ``r_safe`` not in (0, gamma^L), or ``length`` < 1.
    """
    if length < 1 or not 0 < r_safe < gamma**length:
        raise ValueError(f"need length >= 1 and 0 < r_safe < gamma^L = {gamma**length:.3f}, "
                         f"got L={length}, r_safe={r_safe}")
    hub, end = 0, 2 * length + 1
    corridor = list(range(1, length + 1))
    decoys = list(range(length + 1, 2 * length + 1))
    n = 2 * length + 2
    go, out = 0, 1
    p = torch.zeros(n, 2, n, dtype=torch.float64)
    r = torch.zeros(n, 2, dtype=torch.float64)
    p[hub, go, corridor[0]] = 1.0
    p[hub, out, end] = 1.0
    r[hub, out] = r_safe
    for chain in (corridor, decoys):
        for i, s in enumerate(chain):
            last = i == length - 1
            p[s, go, end if last else chain[i + 1]] = 1.0
            r[s, go] = 1.0 if last else 0.0
            p[s, out, end] = 1.0  # the pit
    p[end, :, end] = 1.0
    start = torch.zeros(n, dtype=torch.float64)
    start[hub] = 1.0
    balls = [(s,) for s in range(n)]
    for c, d in zip(corridor, decoys, strict=True):
        balls[c] = (c, d)
    names = ("hub", *(f"c{i + 1}" for i in range(length)), *(f"d{i + 1}" for i in range(length)),
             "end")
    return TabularSAMDP(p, r, gamma, start, tuple(balls), names)


@dataclass(frozen=True)
class ToyResult:
    """Outcome of each initialisation per method, with the final values.

    Attributes:
        outcomes: method -> ``(N,)`` indices into :data:`OUTCOMES`.
        natural, worst: method -> ``(N,)`` final natural and worst-case values ``V(mu_0)``.
        optimum: ``V*``, the optimal (and optimal robust) value.
    """

    outcomes: dict[str, np.ndarray]
    natural: dict[str, np.ndarray]
    worst: dict[str, np.ndarray]
    optimum: float

    def fractions(self) -> dict[str, dict[str, float]]:
        """method -> outcome -> fraction of initialisations."""
        return {m: {o: float(np.mean(v == k)) for k, o in enumerate(OUTCOMES)}
                for m, v in self.outcomes.items()}


def objective(mdp: TabularSAMDP, theta: torch.Tensor, method: str, kappa: float
              ) -> torch.Tensor:
    """The summed objective over initialisations whose gradient in ``theta`` ``(N, S, A)`` is
    the method's exact update direction (its adversary held fixed).

    Raises:
        ValueError: ``method`` is not one of :data:`METHODS`.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    inner, guided = METHODS[method]
    policy = torch.softmax(theta, -1)
    natural = mdp.start_value(policy)
    if inner == "none":
        return natural.sum()
    adversary = (mdp.strongest_adversary if inner == "strongest"
                 else mdp.max_kl_adversary)(policy.detach())
    attacked = mdp.start_value(mdp.attacked(policy, adversary))
    return (attacked + kappa * natural).sum() if guided else attacked.sum()


def run_toy(mdp: TabularSAMDP | None = None, inits: int = 300, iterations: int = 100,
            lr: float = 30.0, init_std: float = 1.0, kappa: float = 0.3, tol: float = 0.9,
            seed: int = 0, methods: tuple[str, ...] = tuple(METHODS)) -> ToyResult:
    """Exact gradient ascent of each method from the same ``inits`` initialisations.

    Args:
        mdp: the ISA-MDP (default :func:`corridor_trap`).
        inits: number of initial policies; iterations, lr: gradient-ascent steps and size.
        init_std: std of the initial logits; kappa: BARPO's SPO guidance weight.
        tol: the fraction of ``V*`` that counts as reaching the optimum.
        seed: seed of the initial logits.

    Raises:
        ValueError: an unknown method.
    """
    for method in methods:
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    mdp = mdp or corridor_trap()
    gen = torch.Generator().manual_seed(seed)
    theta0 = torch.randn(inits, mdp.n_states, mdp.n_actions, generator=gen,
                         dtype=torch.float64) * init_std
    best = optimal_policy(mdp)
    optimum = float(mdp.start_value(best.unsqueeze(0))[0])
    outcomes, natural, worst = {}, {}, {}
    for method in methods:
        theta = theta0.clone().requires_grad_(True)
        for _ in range(iterations):
            (grad,) = torch.autograd.grad(objective(mdp, theta, method, kappa), theta)
            with torch.no_grad():
                theta += lr * grad
        with torch.no_grad():
            policy = torch.softmax(theta, -1)
            nat = mdp.start_value(policy)
            adv = mdp.start_value(mdp.attacked(policy, mdp.strongest_adversary(policy)))
        start = int(mdp.start.argmax())
        gave_up = (policy[:, start] * best[start]).sum(-1).numpy() < 0.5
        label = np.select(
            [adv.numpy() >= tol * optimum, nat.numpy() >= tol * optimum, gave_up],
            [0, 1, 2], default=3)
        outcomes[method], natural[method], worst[method] = label, nat.numpy(), adv.numpy()
    return ToyResult(outcomes, natural, worst, optimum)


def optimal_policy(mdp: TabularSAMDP, iterations: int = 1000) -> torch.Tensor:
    """A deterministic Bellman-optimal policy ``(S, A)`` by value iteration."""
    v = torch.zeros(mdp.n_states, dtype=torch.float64)
    for _ in range(iterations):
        q = mdp.rewards + mdp.gamma * mdp.transitions @ v
        v = q.max(-1).values
    return torch.nn.functional.one_hot(q.argmax(-1), mdp.n_actions).to(torch.float64)
