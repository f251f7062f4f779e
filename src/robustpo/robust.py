"""Training adversaries plugged into the PPO update: SPO, SA-PPO, CAR-PPO (ARPO) and BAR-PPO.

One PPO learner (:class:`robustpo.ppo.PPOLearner`) trains every method; they differ only in
the policy loss of a minibatch, which :class:`PolicyObjective` computes. With ``B`` the
minibatch size, ``L_i(x)`` the negated clipped PPO surrogate of sample i evaluated at
observation ``x`` (ratio ``pi(a_i | x) / pi_old(a_i | s_i)``), ``s`` the clean normalised
observations and ``s*`` the inner solver's point of the eps-ball around them:

- ``ppo`` (SPO): ``mean_i L_i(s_i)``; the identity adversary.
- ``sappo`` (Zhang et al. NeurIPS 2020, SA_PPO code): ``mean_i L_i(s_i) + kappa * mean_i
  sum(((mu(s*_i) - mu(s_i)) / sigma)^2)``, ``s*`` maximising that same KL term by SGLD. As in
  SA_PPO's ``get_state_kl_bound_sgld``, ``mu(s)`` and ``sigma`` are held fixed in the term, so
  its gradient flows through ``mu(s*)`` only (a larger sigma could otherwise shrink it).
- ``carppo`` (CAR-PPO, Li et al. 2024, CAR-RL code; ARPO of the BARPO paper): ``s*``
  maximises ``L_i`` (PGD from a uniform random start, or SGLD); the loss is ``kappa * mean_i
  L_i(s_i) + car_reg * sum_i w_i L_i(s*_i)`` with ``w = softmax(L(s*) / car_lambda)`` held
  fixed. ``kappa = 1`` is CAR-RL's released configuration (``ROBUST_ADD_CLEAN_LOSS``) and the
  BARPO paper's "ARPO with guidance"; ``kappa = 0`` is ARPO (CAR-RL then drops ``car_reg``
  too, which changes the loss scale only).
- ``barppo`` (BAR-PPO, Li et al. ICLR 2026, section 4): ``s*`` maximises ``KL(pi(.|s) ||
  pi(.|s'))`` by SGLD (the weakened inner adversary); the loss is ``mean_i L_i(s*_i) + kappa *
  mean_i L_i(s_i)`` (SPO guidance), the inner solution held fixed (no second-order terms).

With ``robust_std_grad = clean`` the perturbed terms ``L_i(s*_i)`` take their log-std
gradient at the clean states instead (value and mean-network gradient unchanged): the log-std
is state-independent, and the literal form's ratio against ``pi_old(a_i | s_i)`` at shifted
means keeps pushing it up (docs/results.md, "sigma inflation").

The value function always regresses on clean states. The entropy bonus (``entropy_coef``)
is added once. Both the closed-form gradients (default) and an autograd reference
(``analytic_grads = false``) are provided; ``tests/test_robust.py`` checks they agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .config import PPOConfig
from .nets import LOG_2PI, GaussianActor
from .perturb import check_in_ball, pgd, sgld
from .ppo_loss import Surrogate, clipped_surrogate


def ramped_eps(cfg: PPOConfig, iteration: int) -> float:
    """Training eps at PPO iteration ``iteration`` (0-based): ``attack_eps`` ramped linearly
    from 0 over the first ``eps_ramp`` fraction of the iterations (REFERENCE section 3: 732 of
    976 on Hopper), constant afterwards. Normalised-observation units."""
    ramp = cfg.eps_ramp * cfg.iterations
    if ramp <= 0:
        return cfg.attack_eps
    return cfg.attack_eps * min(1.0, iteration / ramp)


def car_weights(per_sample_loss: torch.Tensor, temperature: float) -> torch.Tensor:
    """CAR-PPO's soft worst-case weights ``softmax(L / lambda)`` over a minibatch ``(B,)``:
    they sum to one, favour the samples whose perturbed surrogate loss is largest, and tend
    to uniform as ``lambda`` grows (CAR-RL ``ROBUST_SOFT_LAMBDA``). Held fixed (no gradient)."""
    return torch.softmax(per_sample_loss.detach() / temperature, 0)


class PolicyKL:
    """Per-sample ``KL(pi(.|s) || pi(.|s')) = 0.5 * sum(((mu(s') - mu(s)) / sigma)^2)`` as a
    function of ``s'`` (the policies share the state-independent sigma), with its gradient in
    closed form. Maximised by SA-PPO's and BAR-PPO's inner solvers.

    Args:
        actor: the policy.
        clean_mean: ``mu(s)``, ``(B, act_dim)``, held fixed.
    """

    def __init__(self, actor: GaussianActor, clean_mean: torch.Tensor) -> None:
        self.actor = actor
        self.clean_mean = clean_mean.detach()
        self.inv_var = torch.exp(-2.0 * actor.log_std.detach())

    def __call__(self, perturbed: torch.Tensor) -> torch.Tensor:
        d = self.actor(perturbed) - self.clean_mean
        return 0.5 * (d * d * self.inv_var).sum(-1)

    @torch.no_grad()
    def gradient(self, perturbed: torch.Tensor) -> torch.Tensor:
        """d KL_i / d s'_i, ``(B, obs_dim)``."""
        mean, cache = self.actor.mean_net.forward_cached(perturbed)
        return self.actor.mean_net.input_gradient(cache, (mean - self.clean_mean) * self.inv_var)


class SurrogateLoss:
    """Per-sample negated clipped surrogate ``L_i(s')`` as a function of ``s'``, with its
    gradient in closed form: CAR-PPO's inner objective (maximised: the worst-case surrogate)."""

    def __init__(
        self, actor: GaussianActor, actions: torch.Tensor, old_log_probs: torch.Tensor,
        adv: torch.Tensor, clip: float,
    ) -> None:
        self.actor, self.args = actor, (actions, old_log_probs, adv, clip)

    def __call__(self, perturbed: torch.Tensor) -> torch.Tensor:
        actions, old_log_probs, adv, clip = self.args
        log_probs = self.actor.log_prob(self.actor(perturbed), actions)
        return clipped_surrogate(log_probs, old_log_probs, adv, clip)[0]

    @torch.no_grad()
    def gradient(self, perturbed: torch.Tensor) -> torch.Tensor:
        """d L_i / d s'_i, ``(B, obs_dim)``."""
        s = Surrogate(self.actor, perturbed, *self.args)
        return self.actor.mean_net.input_gradient(s.cache, s.mean_grad(1.0))


@dataclass
class PolicyStep:
    """The policy loss of one minibatch.

    Attributes:
        loss: scalar policy loss, without the entropy bonus (a graph in the autograd path).
        ratio: clean ratios ``pi(a|s) / pi_old(a|s)`` ``(B,)``, for diagnostics.
        grads: closed-form gradient of ``loss - entropy_coef * entropy`` in the order of
            ``actor.parameters()``; None in the autograd path.
        inner: mean inner objective at ``s*`` (KL for sappo/barppo, ``L`` for carppo; 0 for ppo).
        kl: mean ``KL(pi(.|s) || pi(.|s*))`` between clean and perturbed policies (0 for ppo).
    """

    loss: torch.Tensor
    ratio: torch.Tensor
    grads: list[torch.Tensor] | None
    inner: torch.Tensor
    kl: torch.Tensor


def _add(a: list[torch.Tensor], b: list[torch.Tensor]) -> list[torch.Tensor]:
    return [x + y for x, y in zip(a, b)]


class PolicyObjective:
    """The minibatch policy loss of ``cfg.algo`` (see the module docstring).

    Args:
        cfg: the run's config (algo, kappa, car_reg, car_lambda, inner_solver, inner_steps,
            sgld_beta, clip_eps, entropy_coef).
        generator: random generator of the inner solver (SGLD noise, PGD start); separate from
            the learner's so that eps = 0 reproduces PPO's random stream exactly.

    Raises (from :meth:`step`):
        PerturbationOutOfBallError: a training perturbation left the eps-ball (a bug).
    """

    def __init__(self, cfg: PPOConfig, generator: torch.Generator) -> None:
        self.cfg = cfg
        self.generator = generator

    def perturb(
        self, actor: GaussianActor, obs: torch.Tensor, actions: torch.Tensor,
        old_log_probs: torch.Tensor, adv: torch.Tensor, clean_mean: torch.Tensor, eps: float,
    ) -> torch.Tensor:
        """The inner solution ``s*`` ``(B, obs_dim)``, inside the eps-ball around ``obs``."""
        cfg = self.cfg
        objective: PolicyKL | SurrogateLoss
        if cfg.algo == "carppo":
            objective = SurrogateLoss(actor, actions, old_log_probs, adv, cfg.clip_eps)
        else:
            objective = PolicyKL(actor, clean_mean)
        if cfg.inner_solver == "pgd":
            perturbed = pgd(objective, obs, eps, cfg.inner_steps, random_start=True,
                            generator=self.generator)
        else:
            perturbed = sgld(objective, obs, eps, cfg.inner_steps, cfg.sgld_beta,
                             generator=self.generator)
        check_in_ball(perturbed, obs, eps, f"{cfg.algo} training adversary")
        return perturbed

    @torch.no_grad()
    def step(
        self, actor: GaussianActor, obs: torch.Tensor, actions: torch.Tensor,
        old_log_probs: torch.Tensor, adv: torch.Tensor, eps: float, analytic: bool = True,
    ) -> PolicyStep:
        """Loss (and, if ``analytic``, gradients) of one minibatch.

        Args:
            actor: the policy being trained.
            obs: clean normalised observations ``(B, obs_dim)``; actions ``(B, act_dim)``;
                old_log_probs and normalised advantages ``(B,)``.
            eps: this iteration's training radius (:func:`ramped_eps`).
            analytic: closed-form gradients; else a differentiable ``loss`` for autograd.
        """
        cfg = self.cfg
        clean = Surrogate(actor, obs, actions, old_log_probs, adv, cfg.clip_eps)
        zero = torch.zeros(())
        if cfg.algo == "ppo":
            perturbed, robust = None, None
        else:
            perturbed = self.perturb(actor, obs, actions, old_log_probs, adv, clean.mean, eps)
            robust = Surrogate(actor, perturbed, actions, old_log_probs, adv, cfg.clip_eps)
        if analytic:
            return self._analytic(actor, clean, robust)
        with torch.enable_grad():
            loss = self._autograd_loss(actor, obs, actions, old_log_probs, adv, perturbed)
        inner, kl = self._stats(clean, robust) if robust is not None else (zero, zero)
        return PolicyStep(loss, clean.ratio, None, inner, kl)

    def _stats(self, clean: Surrogate, robust: Surrogate) -> tuple[torch.Tensor, torch.Tensor]:
        d = (robust.mean - clean.mean) * clean.inv_std
        kl = 0.5 * (d * d).sum(1).mean()
        inner = robust.per_sample.mean() if self.cfg.algo == "carppo" else kl
        return inner, kl

    def _analytic(
        self, actor: GaussianActor, clean: Surrogate, robust: Surrogate | None
    ) -> PolicyStep:
        cfg, net = self.cfg, actor.mean_net
        w = 1.0 / clean.per_sample.shape[0]
        log_std_grad = torch.full_like(actor.log_std, -cfg.entropy_coef)
        mean_grads: list[torch.Tensor] | None = None

        def add_surrogate(s: Surrogate, weights: torch.Tensor | float) -> None:
            nonlocal log_std_grad, mean_grads
            std_at = clean if s is robust and cfg.robust_std_grad == "clean" else s
            log_std_grad = std_at.log_std_grad(weights) + log_std_grad
            grads = net.backward(s.cache, s.mean_grad(weights))
            mean_grads = grads if mean_grads is None else _add(mean_grads, grads)

        zero = torch.zeros(())
        if robust is None:  # ppo
            add_surrogate(clean, w)
            loss, inner, kl = clean.per_sample.mean(), zero, zero
        else:
            inner, kl = self._stats(clean, robust)
            if cfg.algo == "barppo":
                add_surrogate(robust, w)
                loss = robust.per_sample.mean()
                if cfg.kappa > 0:
                    add_surrogate(clean, cfg.kappa * w)
                    loss = loss + cfg.kappa * clean.per_sample.mean()
            elif cfg.algo == "carppo":
                loss = zero
                if cfg.kappa > 0:
                    add_surrogate(clean, cfg.kappa * w)
                    loss = cfg.kappa * clean.per_sample.mean()
                if cfg.car_reg > 0 or mean_grads is None:
                    weights = car_weights(robust.per_sample, cfg.car_lambda)
                    add_surrogate(robust, cfg.car_reg * weights)
                    loss = loss + cfg.car_reg * (weights * robust.per_sample).sum()
            else:  # sappo: the KL term's gradient flows through mu(s*) only
                add_surrogate(clean, w)
                d = robust.mean - clean.mean
                reg = (d * d * (clean.inv_std * clean.inv_std)).sum(1).mean()
                loss = clean.per_sample.mean() + cfg.kappa * reg
                if cfg.kappa > 0:
                    g = d * (clean.inv_std * clean.inv_std) * (2.0 * cfg.kappa * w)
                    assert mean_grads is not None
                    mean_grads = _add(mean_grads, net.backward(robust.cache, g))
        assert mean_grads is not None
        return PolicyStep(loss, clean.ratio, [log_std_grad, *mean_grads], inner, kl)

    def _autograd_loss(
        self, actor: GaussianActor, obs: torch.Tensor, actions: torch.Tensor,
        old_log_probs: torch.Tensor, adv: torch.Tensor, perturbed: torch.Tensor | None,
    ) -> torch.Tensor:
        """The same loss as :meth:`_analytic` as a differentiable tensor (the reference)."""
        cfg = self.cfg
        clean_mean = actor(obs)

        def surrogate(mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
            z = (actions - mean) * torch.exp(-log_std)
            log_probs = -0.5 * (z * z).sum(-1) - log_std.sum() - 0.5 * LOG_2PI * mean.shape[-1]
            return clipped_surrogate(log_probs, old_log_probs, adv, cfg.clip_eps)[0]

        def robust_surrogate(mean: torch.Tensor) -> torch.Tensor:
            if cfg.robust_std_grad == "perturbed":
                return surrogate(mean, actor.log_std)
            # The value at the perturbed mean, the log-std gradient at the clean one.
            at_clean = surrogate(clean_mean.detach(), actor.log_std)
            return surrogate(mean, actor.log_std.detach()) + at_clean - at_clean.detach()

        clean = surrogate(clean_mean, actor.log_std).mean()
        if perturbed is None:
            return clean
        robust_mean = actor(perturbed)
        if cfg.algo == "barppo":
            return robust_surrogate(robust_mean).mean() + cfg.kappa * clean
        if cfg.algo == "carppo":
            per_sample = robust_surrogate(robust_mean)
            weights = car_weights(per_sample, cfg.car_lambda)
            return cfg.kappa * clean + cfg.car_reg * (weights * per_sample).sum()
        z = (robust_mean - clean_mean.detach()) * torch.exp(-actor.log_std.detach())
        return clean + cfg.kappa * (z * z).sum(-1).mean()
