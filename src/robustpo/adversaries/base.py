"""The training-adversary interface of the PPO family, its registry, and the pieces the methods
share.

A training adversary is what distinguishes SPO, SA-PPO, CAR-PPO, BAR-PPO (and later RADIAL,
WocaR, OA-PPO): given a minibatch and this iteration's eps it solves its inner problem over
the eps-ball (:meth:`TrainingAdversary.perturb`), and returns the policy loss
(:meth:`TrainingAdversary.loss`, differentiable: autograd trains any method) and, optionally,
its gradient in closed form (:meth:`TrainingAdversary.closed_form`, a speed-up). It may add a
value-loss term, and owns its eps schedule, metrics and config section. A method is one module
with a class registered by :func:`register`; ``--algo NAME`` looks it up.

Notation: ``B`` the minibatch size, ``L_i(x)`` the negated clipped PPO surrogate of sample i
at observation ``x`` (ratio ``pi(a_i | x) / pi_old(a_i | s_i)``), ``s`` the clean normalised
observations, ``s*`` the inner solver's point of the eps-ball around them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import torch
from torch import nn

from ..config.sections import MethodConfig, PPOConfig, RobustMethodConfig
from ..core.gaussian import gaussian_log_prob, mean_shift_kl
from ..core.nets import GaussianActor
from ..core.objectives import PolicyKL
from ..core.perturb import Objective, check_in_ball, pgd, sgld
from ..core.surrogate import Surrogate, clipped_surrogate
from ..errors import UnknownNameError

if TYPE_CHECKING:
    from ..agents.agent import Agent


@dataclass
class Minibatch:
    """One PPO minibatch, tensors of ``B`` rows: ``obs`` clean normalised ``(B, obs_dim)``,
    ``actions`` ``(B, act_dim)`` in action units, ``old_log_probs``, ``adv`` (normalised),
    ``old_values`` and ``returns`` ``(B,)``."""

    obs: torch.Tensor
    actions: torch.Tensor
    old_log_probs: torch.Tensor
    adv: torch.Tensor
    old_values: torch.Tensor
    returns: torch.Tensor


@dataclass
class PolicyStep:
    """The policy loss of one minibatch.

    Attributes:
        loss: scalar policy loss, without the entropy bonus (a graph in the autograd path).
        ratio: clean ratios ``pi(a|s) / pi_old(a|s)`` ``(B,)``, for diagnostics.
        grads: closed-form gradient of ``loss - entropy_coef * entropy`` in the order of
            ``actor.parameters()``; None in the autograd path.
        metrics: the adversary's minibatch metrics (scalar tensors), by name.
    """

    loss: torch.Tensor
    ratio: torch.Tensor
    grads: list[torch.Tensor] | None
    metrics: dict[str, torch.Tensor]


class GradientSum:
    """Accumulates closed-form gradients of weighted surrogates in the order of
    ``actor.parameters()`` (log-std first, then the mean network's weights and biases).

    Args:
        actor: the Gaussian policy; entropy_coef: the bonus, whose gradient -entropy_coef on
            log-std is the starting value.
    """

    def __init__(self, actor: GaussianActor, entropy_coef: float) -> None:
        self.net = actor.mean_net
        self.log_std = torch.full_like(actor.log_std, -entropy_coef)
        self.mean: list[torch.Tensor] | None = None

    def add_mean_net(self, grads: list[torch.Tensor]) -> None:
        """Add a gradient of the mean network's parameters."""
        self.mean = grads if self.mean is None else [a + b for a, b in zip(self.mean, grads)]

    def add_surrogate(self, s: Surrogate, weights: torch.Tensor | float,
                      log_std_at: Surrogate | None = None) -> None:
        """Add the gradient of ``sum_i w_i s.per_sample[i]``; its log-std part taken from
        ``log_std_at`` when given (the clean surrogate, for ``robust_std_grad = clean``)."""
        self.log_std = (log_std_at or s).log_std_grad(weights) + self.log_std
        self.add_mean_net(self.net.backward(s.cache, s.mean_grad(weights)))

    def grads(self) -> list[torch.Tensor]:
        """The sum so far, in the order of ``actor.parameters()``.

        Raises:
            RuntimeError: no surrogate was added.
        """
        if self.mean is None:
            raise RuntimeError("no gradient was added")
        return [self.log_std, *self.mean]


class Method:
    """What the registry knows of a training method, whatever its learner.

    Attributes:
        name: the ``--algo`` value; display_name: its name in result tables;
        description: one line for ``robustpo list``; config_class: its ``method`` section;
        learner: the learner it plugs into (``ppo`` or ``td3``, :mod:`robustpo.learners`);
        metric_names: every metric it reports, in CSV order.
    """

    name: ClassVar[str]
    display_name: ClassVar[str]
    description: ClassVar[str]
    config_class: ClassVar[type[MethodConfig]] = MethodConfig
    learner: ClassVar[str] = "ppo"
    metric_names: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def variant_tags(cls, cfg: MethodConfig) -> list[str]:
        """Words that tell this configuration apart in result tables (e.g. ``"kappa 0.3"``),
        so that agents of different variants are not pooled into one median."""
        return []


class TrainingAdversary(Method, ABC):
    """Base class of the PPO family's training methods (module docstring).

    Subclasses set ``name`` (the ``--algo`` value), ``display_name``, ``config_class`` (the
    method's section) and implement :meth:`loss`; robust methods also :meth:`inner_objective`.

    Args:
        cfg: the method's config section (an instance of ``config_class``).
        ppo: the PPO core config (clip range, entropy bonus).
        attack_eps: the task's eps (normalised units) the schedule ramps to.
        generator: the adversary's own random stream (random starts, SGLD noise), separate
            from the learner's so that a method at eps 0 consumes the learner's stream as SPO.
    """

    def __init__(self, cfg: MethodConfig, ppo: PPOConfig, attack_eps: float,
                 generator: torch.Generator) -> None:
        self.cfg, self.ppo, self.attack_eps, self.generator = cfg, ppo, attack_eps, generator

    # ---- state of its own, and the rollout's advantages ----------------------------------
    def build(self, agent: Agent) -> None:
        """Create the method's own networks once the agent exists; modules added to
        ``agent.modules`` are saved with the agent (default: none)."""

    def rollout_advantages(self, rollout: Any, agent: Agent) -> torch.Tensor:
        """The advantages the update uses, ``(T, num_envs)``, from a collected
        :class:`~robustpo.learners.ppo.Rollout` (default: its GAE advantages)."""
        return rollout.advantages

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The method's own training state (optimisers, ...), for checkpoints."""
        return {}

    def restore(self, tensors: dict[str, torch.Tensor]) -> None:
        """Load :meth:`state_tensors`' output."""

    # ---- the schedule and the inner problem ----------------------------------------------
    def eps(self, iteration: int) -> float:
        """Training eps at PPO iteration ``iteration`` (0-based), normalised units; 0 for
        methods without an inner problem."""
        return 0.0

    def perturb(self, actor: GaussianActor, batch: Minibatch, clean: Surrogate, eps: float
                ) -> torch.Tensor | None:
        """The inner solution ``s*`` ``(B, obs_dim)`` inside the eps-ball, or None (SPO)."""
        return None

    # ---- the outer problem ---------------------------------------------------------------
    @abstractmethod
    def loss(self, actor: GaussianActor, batch: Minibatch, perturbed: torch.Tensor | None
             ) -> torch.Tensor:
        """The policy loss as a differentiable scalar (without the entropy bonus)."""

    def closed_form(self, actor: GaussianActor, clean: Surrogate, robust: Surrogate | None
                    ) -> tuple[torch.Tensor, list[torch.Tensor]] | None:
        """``(loss, gradient of loss - entropy_coef * entropy)`` in closed form, gradient in
        the order of ``actor.parameters()``; None (the default) means autograd."""
        return None

    def value_loss_term(self, critic: nn.Module, batch: Minibatch) -> torch.Tensor | None:
        """An extra differentiable term of the value loss (None: plain regression)."""
        return None

    def metrics(self, clean: Surrogate, robust: Surrogate | None) -> dict[str, torch.Tensor]:
        """Scalar tensors of one minibatch (averaged over the last epoch by the learner)."""
        return {}

    def iteration_metrics(self, eps: float) -> dict[str, float]:
        """Metrics of a whole iteration, e.g. its training eps."""
        return {}

    # ---- one minibatch -------------------------------------------------------------------
    @torch.no_grad()
    def step(self, actor: GaussianActor, batch: Minibatch, eps: float, analytic: bool = True
             ) -> PolicyStep:
        """Solve the inner problem, then the loss and (if ``analytic`` and provided) its
        closed-form gradient, for one minibatch."""
        clean = Surrogate(actor, batch.obs, batch.actions, batch.old_log_probs, batch.adv,
                          self.ppo.clip_eps)
        perturbed = self.perturb(actor, batch, clean, eps)
        robust = None if perturbed is None else Surrogate(
            actor, perturbed, batch.actions, batch.old_log_probs, batch.adv, self.ppo.clip_eps)
        closed = self.closed_form(actor, clean, robust) if analytic else None
        metrics = self.metrics(clean, robust)
        if closed is not None:
            return PolicyStep(closed[0], clean.ratio, closed[1], metrics)
        with torch.enable_grad():
            loss = self.loss(actor, batch, perturbed)
        return PolicyStep(loss, clean.ratio, None, metrics)


class RobustAdversary(TrainingAdversary):
    """A method with an inner maximisation over the eps-ball, solved by SGLD or PGD with
    ``inner_steps`` sign steps (REFERENCE section 3), and a linear eps ramp."""

    config_class: ClassVar[type[MethodConfig]] = RobustMethodConfig
    metric_names: ClassVar[tuple[str, ...]] = ("train_eps", "inner_objective", "perturbed_kl")
    cfg: RobustMethodConfig

    def __init__(self, cfg: MethodConfig, ppo: PPOConfig, attack_eps: float,
                 generator: torch.Generator) -> None:
        super().__init__(cfg, ppo, attack_eps, generator)
        self.iterations = ppo.iterations

    def eps(self, iteration: int) -> float:
        """``attack_eps`` ramped linearly from 0 over the first ``eps_ramp`` fraction of the
        iterations (REFERENCE section 3: 732 of 976 on Hopper), constant afterwards."""
        ramp = self.cfg.eps_ramp * self.iterations
        if ramp <= 0:
            return self.attack_eps
        return self.attack_eps * min(1.0, iteration / ramp)

    @abstractmethod
    def inner_objective(self, actor: GaussianActor, batch: Minibatch, clean: Surrogate
                        ) -> Objective:
        """The per-sample function of ``s'`` the inner solver maximises."""

    def perturb(self, actor: GaussianActor, batch: Minibatch, clean: Surrogate, eps: float
                ) -> torch.Tensor:
        """Maximise :meth:`inner_objective` over the eps-ball with the configured solver.

        Raises:
            PerturbationOutOfBallError: the solver left the ball (a bug).
        """
        objective = self.inner_objective(actor, batch, clean)
        if self.cfg.inner_solver == "pgd":
            perturbed = pgd(objective, batch.obs, eps, self.cfg.inner_steps, random_start=True,
                            generator=self.generator)
        else:
            perturbed = sgld(objective, batch.obs, eps, self.cfg.inner_steps,
                             self.cfg.sgld_beta, generator=self.generator)
        check_in_ball(perturbed, batch.obs, eps, f"{self.name} training adversary")
        return perturbed

    def inner_value(self, clean: Surrogate, robust: Surrogate) -> torch.Tensor:
        """Mean inner objective at ``s*`` for the metrics (the KL by default)."""
        return self.perturbed_kl(clean, robust)

    @staticmethod
    def perturbed_kl(clean: Surrogate, robust: Surrogate) -> torch.Tensor:
        """Mean ``KL(pi(.|s) || pi(.|s*))`` between the clean and perturbed policies."""
        return mean_shift_kl(robust.mean, clean.mean, clean.inv_std * clean.inv_std).mean()

    def metrics(self, clean: Surrogate, robust: Surrogate | None) -> dict[str, torch.Tensor]:
        assert robust is not None
        return {"inner_objective": self.inner_value(clean, robust),
                "perturbed_kl": self.perturbed_kl(clean, robust)}

    def iteration_metrics(self, eps: float) -> dict[str, float]:
        return {"train_eps": eps}

    def surrogate(self, actor: GaussianActor, batch: Minibatch, mean: torch.Tensor,
                  std_at: torch.Tensor | None = None) -> torch.Tensor:
        """Per-sample ``L_i`` ``(B,)`` at policy means ``mean`` (differentiable). With
        ``std_at`` (the clean means), its log-std gradient is the one at ``std_at`` while its
        value stays the one at ``mean`` (``robust_std_grad = clean``)."""
        clip = self.ppo.clip_eps
        if std_at is None:
            return surrogate_at(batch, mean, actor.log_std, clip)
        at_clean = surrogate_at(batch, std_at.detach(), actor.log_std, clip)
        return (surrogate_at(batch, mean, actor.log_std.detach(), clip) + at_clean
                - at_clean.detach())


class MaxKLAdversary(RobustAdversary):
    """A robust method whose inner problem is the policy's KL between clean and perturbed
    states, ``max_{s'} KL(pi(.|s) || pi(.|s'))`` (SA-PPO's regulariser, BAR-PPO's weakened
    adversary)."""

    def inner_objective(self, actor: GaussianActor, batch: Minibatch, clean: Surrogate
                        ) -> Objective:
        return PolicyKL(actor, clean.mean)


def surrogate_at(batch: Minibatch, mean: torch.Tensor, log_std: torch.Tensor, clip: float
                 ) -> torch.Tensor:
    """Per-sample negated clipped surrogate ``(B,)`` for policy means ``mean`` and ``log_std``
    (differentiable), the ratio against ``batch.old_log_probs``."""
    log_probs = gaussian_log_prob(mean, log_std, batch.actions)[0]
    return clipped_surrogate(log_probs, batch.old_log_probs, batch.adv, clip)[0]


_REGISTRY: dict[str, type[Method]] = {}
MethodT = TypeVar("MethodT", bound=type[Method])


def register(cls: MethodT) -> MethodT:
    """Class decorator adding a training method to the registry under ``cls.name``."""
    _REGISTRY[cls.name] = cls
    return cls


def method_names() -> list[str]:
    """Registered training methods (``--algo`` values)."""
    return list(_REGISTRY)


def method_class(name: str) -> type[Any]:
    """The registered class of method ``name``.

    Raises:
        UnknownNameError: no such method (the message lists the registered ones).
    """
    if name not in _REGISTRY:
        raise UnknownNameError("algorithm", name, method_names())
    return _REGISTRY[name]
