"""OA-TD3: TD3 with an optimal-adversary-aware critic (the OA-PI framework, Nie, Fu, Ji, Gao,
arXiv 2507.03372; REFERENCE section 5).

Besides TD3's twin critics Q, the agent learns twin OA critics Q_adv (the agent's ``q_adv``
module, so the ``min-oa-q`` attack uses them) with the OA Bellman operator

    Q_adv(s, a) <- r + gamma * not_done * min_i min_{||delta|| <= eps} Q_adv'_i(s', a~' + delta)

where a~' is TD3's smoothed target action and each inner min is found by PGD
(:func:`robustpo.core.perturb.pgd_best`, the action attacks' solver: sign steps over the action
ball of ``eps`` half-ranges and the action space, batched over the minibatch and both critics). The
actor follows ``(1 - omega) g + omega g_adv``, g and g_adv the gradients of ``-Q_1(s,
mu(s))`` and ``-Q_adv_1(s, mu(s))``, combined by gradient surgery (PCGrad, Yu et al. 2020:
when they conflict, each is projected onto the normal plane of the other before the weighted
sum; :func:`surgery`).

Choices where the paper's text is not available to us (docs/action-robustness.md): the OA
critics start as copies of the nominal ones and use the same smoothed target actions, so that
eps = 0 gives Q_adv = Q exactly (and, with omega 0 or 0.5, TD3's parameters bit for bit); the
PGD starts from a~' itself (no random start: a target must not be noisier than TD3's) and the
inner min is the lowest value it evaluated (:func:`robustpo.core.perturb.pgd_best`); K = 10
steps by default (the paper: 15-20).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from ..config.sections import MethodConfig, check_positive, setting
from ..core.objectives import worst_twin_q
from ..core.optim import adam, load_optimizer, optimizer_tensors, polyak_update
from ..core.replay import Transitions
from ..errors import ConfigError
from .base import register
from .offpolicy import OffPolicyMethod, TD3Networks, smoothed_target_actions

if TYPE_CHECKING:
    from ..agents.agent import Agent


def surgery(nominal: torch.Tensor, adversarial: torch.Tensor, omega: float) -> torch.Tensor:
    """``(1 - omega) g1' + omega g2'`` of two flat gradients, with PCGrad's projection (Yu et
    al., NeurIPS 2020, "Gradient Surgery for Multi-Task Learning") when they conflict
    (``<g1, g2> < 0``): ``g1' = g1 - <g1, g2> / |g2|^2 g2`` and symmetrically, both from the
    original gradients; otherwise the plain weighted sum. For 0 < omega < 1 the result then has
    a non-negative inner product with both (Cauchy-Schwarz); omega 0 (1) returns the nominal
    (adversarial) gradient unchanged, so that omega = 0 is TD3.

    Args:
        nominal, adversarial: gradients ``(n,)``; omega: the adversarial weight in [0, 1].
    """
    if omega in (0.0, 1.0):  # one gradient has no weight: nothing to project away from
        return adversarial if omega else nominal
    dot = torch.dot(nominal, adversarial)
    if dot >= 0:
        return (1 - omega) * nominal + omega * adversarial
    g1 = nominal - dot / torch.dot(adversarial, adversarial) * adversarial
    g2 = adversarial - dot / torch.dot(nominal, nominal) * nominal
    return (1 - omega) * g1 + omega * g2


@dataclass
class OAConfig(MethodConfig):
    """The OA-PI framework's critic and mixing (REFERENCE section 5), shared by OA-TD3 and
    OA-PPO."""

    eps: float = setting(0.1, "the action ball the OA critic plans against, half-ranges of "
                         "the action space (0.1: the action attacks' default)")
    omega: float = setting(0.5, "weight of the OA critic's part (the actor's gradient for "
                           "OA-TD3, the advantage for OA-PPO; the paper: 0.4-0.6)")
    pgd_steps: int = setting(10, "PGD steps of the OA critic's inner min (the paper: 15-20)")

    def validate(self) -> None:
        if not self.eps >= 0.0:
            raise ConfigError(f"Config key 'method.eps' must be >= 0, got {self.eps}.")
        if not 0.0 <= self.omega <= 1.0:
            raise ConfigError(f"Config key 'method.omega' must lie in [0, 1], got "
                              f"{self.omega}.")
        check_positive(self, ["pgd_steps"], "method")


@dataclass
class OATD3Config(OAConfig):
    """OA-TD3's section: the OA critic and the actor's gradient surgery."""

    gradient_surgery: bool = setting(True, "combine the two actor gradients by PCGrad (false: "
                                     "the plain weighted sum, the paper's ablation)")


@register
class OATD3(OffPolicyMethod):
    """OA-TD3 (module docstring)."""

    name = "oa-td3"
    display_name = "OA-TD3"
    description = "OA-TD3: TD3 + optimal-adversary-aware critic (PGD target), PCGrad actor"
    config_class = OATD3Config
    metric_names: ClassVar[tuple[str, ...]] = ("oa_critic_loss", "oa_q_mean", "conflicts")
    cfg: OATD3Config

    @classmethod
    def variant_tags(cls, cfg: MethodConfig) -> list[str]:
        tags = [] if getattr(cfg, "gradient_surgery", True) else ["no surgery"]
        omega = getattr(cfg, "omega", 0.5)
        return tags if omega == 0.5 else [*tags, f"omega {omega:g}"]

    def build(self, nets: TD3Networks, agent: Agent) -> None:
        self.critics = copy.deepcopy(nets.critics)
        agent.modules["q_adv"] = self.critics
        self.critics_target = copy.deepcopy(nets.critics_target)
        self.optimizer = adam(self.critics.parameters(), lr=self.td3.critic_lr)
        self.next_actions: torch.Tensor | None = None
        self.log: dict[str, list[torch.Tensor]] = {name: [] for name in self.metric_names}

    @torch.no_grad()
    def target(self, nets: TD3Networks, batch: Transitions, generator: torch.Generator
               ) -> torch.Tensor:
        """TD3's target; the smoothed target actions are kept for the OA critics'."""
        self.next_actions = smoothed_target_actions(nets.actor_target, nets, batch.next_obs,
                                                    self.td3, generator)
        next_q = nets.critics_target(batch.next_obs, self.next_actions).min(0).values
        return batch.rewards + self.td3.gamma * batch.not_done * next_q

    def oa_target(self, nets: TD3Networks, batch: Transitions) -> torch.Tensor:
        """The OA Bellman target ``(B,)``: each target OA critic at the lowest point PGD from
        the smoothed target action evaluated (the start included, so the target never
        exceeds the same critics' unperturbed one, up to float rounding); the smaller of the
        two critics."""
        worst = worst_twin_q(self.critics_target, batch.next_obs, self.next_actions,
                             self.cfg.eps * nets.half_range, self.cfg.pgd_steps,
                             (nets.low, nets.high))
        return batch.rewards + self.td3.gamma * batch.not_done * worst

    def after_critic_update(self, nets: TD3Networks, batch: Transitions) -> None:
        """One Adam step of the twin OA critics on :meth:`oa_target` (the summed MSE of
        both), after TD3's critic step on the same minibatch."""
        target = self.oa_target(nets, batch)
        q = self.critics(batch.obs, batch.actions)
        loss = (q - target).square().mean(1).sum()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.log["oa_critic_loss"].append(loss.detach())
        self.log["oa_q_mean"].append(q[0].detach().mean())

    def actor_gradients(self, nets: TD3Networks, obs: torch.Tensor
                        ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The actor's loss ``(1 - omega) L + omega L_adv`` (detached, for logging; L and
        L_adv the negated means of Q_1 and Q_adv_1 at mu(s) on normalised observations
        ``(B, obs_dim)``) and the combined gradient in ``actor.parameters()`` order: by
        :func:`surgery` (PCGrad, Yu et al., NeurIPS 2020) unless ``gradient_surgery`` is
        false. When the two conflict, the projected gradient is not that loss's gradient."""
        params = list(nets.actor.parameters())
        actions = nets.actor(obs)
        nominal = -nets.critics.q1(obs, actions).mean()
        adversarial = -self.critics.q1(obs, actions).mean()
        g = torch.autograd.grad(nominal, params, retain_graph=True)
        g_adv = torch.autograd.grad(adversarial, params)
        flat, flat_adv = torch.cat([x.flatten() for x in g]), torch.cat(
            [x.flatten() for x in g_adv])
        omega = self.cfg.omega
        if self.cfg.gradient_surgery:
            combined = surgery(flat, flat_adv, omega)
        else:
            combined = (1 - omega) * flat + omega * flat_adv
        self.log["conflicts"].append((torch.dot(flat, flat_adv) < 0).float())
        grads = [part.view_as(p) for part, p in
                 zip(combined.split([p.numel() for p in params]), params, strict=True)]
        return (1 - omega) * nominal.detach() + omega * adversarial.detach(), grads

    def after_actor_update(self, nets: TD3Networks, batch: Transitions) -> None:
        polyak_update(self.critics_target, self.critics, self.td3.tau)

    def metrics(self) -> dict[str, float]:
        out = {name: float(torch.stack(v).mean()) if v else "" for name, v in self.log.items()}
        self.log = {name: [] for name in self.metric_names}
        return out

    def state_tensors(self) -> dict[str, torch.Tensor]:
        out = {f"q_adv_target.{k}": v for k, v in self.critics_target.state_dict().items()}
        out.update(optimizer_tensors(self.optimizer, "optim."))
        return out

    def restore(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        prefix = "q_adv_target."
        self.critics_target.load_state_dict({k[len(prefix):]: v for k, v in tensors.items()
                                             if k.startswith(prefix)})
        load_optimizer(self.optimizer, tensors, "optim.")
