"""Networks of the agents: the tanh MLP of the PPO recipe (REFERENCE section 3) with its
closed-form backward pass, the Gaussian and deterministic actors, the value network and
TD3's twin critics.

All networks take *normalised* observations, float32, shape ``(batch, obs_dim)``. Every module
an agent holds names its kind and constructor arguments (:meth:`spec`), so that an agent of any
set of modules is saved and rebuilt generically (:data:`MODULE_KINDS`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .gaussian import LOG_2PI, gaussian_log_prob

HIDDEN_DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16}
"""Dtypes of the hidden-to-hidden matrix products of the off-policy networks
(:class:`DeterministicActor`, :class:`TwinQ`). ``bfloat16`` multiplies in bf16 with float32
parameters, inputs, first and last layers, and accumulation: on CPUs with native bf16 products
(AVX512-BF16, AMX) a TD3 step is about 1.85 times faster (docs/benchmarks.md); elsewhere slower."""


def low_precision_dtype(name: str) -> torch.dtype | None:
    """The low-precision dtype named by ``name``, or None for float32.

    Raises:
        ValueError: a name not in :data:`HIDDEN_DTYPES`.
    """
    if name not in HIDDEN_DTYPES:
        raise ValueError(f"Unknown hidden_dtype {name!r}; choose one of {sorted(HIDDEN_DTYPES)}.")
    return None if name == "float32" else HIDDEN_DTYPES[name]


def _product(op: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor,
             w: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """``op(x, w)``, computed in ``dtype`` (None: float32) and returned in float32 (autograd
    casts the gradients back to float32)."""
    if dtype is None:
        return op(x, w)
    return op(x.to(dtype), w.to(dtype)).float()


def _dot_rows(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``x @ w`` for a single output column: ``(2, batch, 1)`` from ``x`` ``(2, batch, in)``
    and ``w`` ``(2, in, 1)``, as row-wise dot products: a batched matrix product with one
    output column is several times slower on common CPU BLAS builds (90 us against 15 us for
    TD3's critics, docs/benchmarks.md)."""
    return torch.linalg.vecdot(x, w.mT).unsqueeze(-1)


class MLP(nn.Module):
    """Tanh MLP with orthogonal initialisation.

    Hidden layers use gain sqrt(2) and zero biases; the output layer uses ``out_gain`` (0.01 for
    the policy mean, 1.0 for the value), as in CleanRL and Engstrom et al. 2020.

    Args:
        in_dim: input size.
        hidden: hidden layer sizes, e.g. ``(64, 64)``.
        out_dim: output size.
        out_gain: orthogonal gain of the output layer.
    """

    def __init__(self, in_dim: int, hidden: Sequence[int], out_dim: int, out_gain: float) -> None:
        super().__init__()
        sizes = [in_dim, *hidden, out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        for i, layer in enumerate(self.layers):
            last = i == len(self.layers) - 1
            nn.init.orthogonal_(layer.weight, gain=out_gain if last else math.sqrt(2.0))
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # F.linear directly: these nets are tiny and per-module call overhead dominates.
        *hidden, last = self.layers
        for layer in hidden:
            x = torch.tanh(F.linear(x, layer.weight, layer.bias))
        return F.linear(x, last.weight, last.bias)

    def forward_cached(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Output and the input of every layer, for :meth:`backward` (call under no_grad)."""
        inputs = [x]
        *hidden, last = self.layers
        for layer in hidden:
            x = torch.tanh(torch.addmm(layer.bias, x, layer.weight.t()))
            inputs.append(x)
        return torch.addmm(last.bias, x, last.weight.t()), inputs

    def backward(self, inputs: list[torch.Tensor], grad_out: torch.Tensor) -> list[torch.Tensor]:
        """Gradients of a loss with respect to the parameters, by the chain rule.

        Args:
            inputs: the layer inputs returned by :meth:`forward_cached`.
            grad_out: d loss / d output, shape ``(batch, out_dim)``.

        Returns:
            Gradients in the order of ``self.parameters()`` (weight, bias of each layer).
            Equal to autograd's up to float rounding (``tests/test_ppo_grad.py``).
        """
        grads: list[torch.Tensor] = []
        g = grad_out
        for i in range(len(self.layers) - 1, -1, -1):
            x = inputs[i]
            grads += [g.sum(0), g.t().mm(x)]
            if i > 0:  # x = tanh(pre-activation): d tanh = 1 - x^2
                g = g.mm(self.layers[i].weight).mul_(1.0 - x * x)
        return grads[::-1]

    def input_gradient(self, inputs: list[torch.Tensor], grad_out: torch.Tensor) -> torch.Tensor:
        """d loss / d input ``(batch, in_dim)`` by the chain rule, for the eps-ball solvers.

        Args as :meth:`backward`. Row i depends on row i of ``grad_out`` only.
        """
        g = grad_out
        for i in range(len(self.layers) - 1, 0, -1):
            x = inputs[i]
            g = g.mm(self.layers[i].weight).mul_(1.0 - x * x)
        return g.mm(self.layers[0].weight)


class GaussianActor(nn.Module):
    """Diagonal Gaussian policy: mean = MLP(s), log-std a state-independent parameter.

    Args:
        obs_dim: normalised observation size.
        act_dim: action size.
        hidden: hidden sizes (64, 64 in REFERENCE section 3).
        init_std: initial standard deviation of every action dimension (REFERENCE: 1.0, 0.5 for
            HalfCheetah).

    Actions are in the environment's units, unbounded (the environment loop clips them).
    """

    kind: ClassVar[str] = "gaussian_actor"

    def __init__(
        self, obs_dim: int, act_dim: int, hidden: Sequence[int], init_std: float = 1.0
    ) -> None:
        super().__init__()
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self.hidden = [int(h) for h in hidden]
        self.mean_net = MLP(obs_dim, hidden, act_dim, out_gain=0.01)
        self.log_std = nn.Parameter(torch.full((act_dim,), math.log(init_std)))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """The deterministic action: the mean, shape ``(batch, act_dim)``."""
        return self.mean_net(obs)

    def act(self, obs: torch.Tensor, deterministic: bool = True,
            generator: torch.Generator | None = None) -> torch.Tensor:
        """The mean, or a sample of N(mean, sigma^2) when not ``deterministic``."""
        mean = self(obs)
        if deterministic:
            return mean
        noise = torch.randn(mean.shape, generator=generator)
        return torch.addcmul(mean, self.log_std.exp(), noise)

    def log_prob(self, mean: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Log-density of ``actions`` ``(batch, act_dim)`` under N(mean, std^2); ``(batch,)``."""
        return gaussian_log_prob(mean, self.log_std, actions)[0]

    def entropy(self) -> torch.Tensor:
        """Entropy of the Gaussian, a scalar (the same for every state)."""
        return (self.log_std + 0.5 * (1.0 + LOG_2PI)).sum()

    def spec(self) -> dict[str, Any]:
        """Kind and constructor arguments (the initial std is irrelevant once loaded)."""
        return {"kind": self.kind, "obs_dim": self.obs_dim, "act_dim": self.act_dim,
                "hidden": self.hidden}


class DeterministicActor(nn.Module):
    """Deterministic policy of the off-policy learners (TD3, Fujimoto et al. 2018): a ReLU MLP
    with a tanh output rescaled to the action bounds, ``(batch, act_dim)`` in action units.

    It has no sigma; ``log_std`` is a zero buffer so that sigma-scaled objectives (the MAD
    attack) reduce to the plain squared action change.

    Args:
        obs_dim, act_dim: sizes; hidden: hidden sizes (256, 256 for TD3).
        action_low, action_high: bounds of the action space, ``(act_dim,)``.
        hidden_dtype: dtype of the hidden-to-hidden products (:data:`HIDDEN_DTYPES`).

    Raises:
        ValueError: an unknown ``hidden_dtype``.
    """

    kind: ClassVar[str] = "deterministic_actor"

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int],
                 action_low: Sequence[float], action_high: Sequence[float],
                 hidden_dtype: str = "float32") -> None:
        super().__init__()
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self.hidden = [int(h) for h in hidden]
        self.hidden_dtype, self.low_dtype = hidden_dtype, low_precision_dtype(hidden_dtype)
        sizes = [self.obs_dim, *self.hidden, self.act_dim]
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(sizes):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers[-1] = nn.Tanh()
        self.net = nn.Sequential(*layers)
        self._linears = [layer for layer in layers if isinstance(layer, nn.Linear)]
        low = torch.as_tensor(action_low, dtype=torch.float32)
        high = torch.as_tensor(action_high, dtype=torch.float32)
        self.register_buffer("centre", (high + low) / 2)
        self.register_buffer("half_range", (high - low) / 2)
        self.register_buffer("log_std", torch.zeros(self.act_dim))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        # F.linear on the layers' tensors, not module calls: at batch 1 (acting) the calls
        # cost as much as the products.
        x, last = obs, len(self._linears) - 1
        for i, linear in enumerate(self._linears):
            if 0 < i < last and self.low_dtype is not None:
                x = _product(F.linear, x, linear.weight, self.low_dtype) + linear.bias
            else:
                x = F.linear(x, linear.weight, linear.bias)
            x = torch.relu(x) if i < last else torch.tanh(x)
        return self.centre + self.half_range * x

    def act(self, obs: torch.Tensor, deterministic: bool = True,
            generator: torch.Generator | None = None) -> torch.Tensor:
        """The action; exploration noise belongs to the learner, so ``deterministic`` is moot."""
        return self(obs)

    def spec(self) -> dict[str, Any]:
        """Kind and constructor arguments."""
        low = (self.centre - self.half_range).tolist()
        high = (self.centre + self.half_range).tolist()
        return {"kind": self.kind, "obs_dim": self.obs_dim, "act_dim": self.act_dim,
                "hidden": self.hidden, "action_low": low, "action_high": high,
                "hidden_dtype": self.hidden_dtype}


class ValueNet(nn.Module):
    """State-value MLP V(s), a separate network from the policy; output shape ``(batch,)``."""

    kind: ClassVar[str] = "value"

    def __init__(self, obs_dim: int, hidden: Sequence[int]) -> None:
        super().__init__()
        self.obs_dim, self.hidden = int(obs_dim), [int(h) for h in hidden]
        self.net = MLP(obs_dim, hidden, 1, out_gain=1.0)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).squeeze(-1)

    def spec(self) -> dict[str, Any]:
        """Kind and constructor arguments."""
        return {"kind": self.kind, "obs_dim": self.obs_dim, "hidden": self.hidden}


class ActionValueNet(nn.Module):
    """Action-value MLP Q(s, a) (tanh, the PPO recipe's networks) on the concatenated
    normalised observation and action in action units; output ``(batch,)``. OA-PPO's OA
    critic."""

    kind: ClassVar[str] = "action_value"

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int]) -> None:
        super().__init__()
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self.hidden = [int(h) for h in hidden]
        self.net = MLP(self.obs_dim + self.act_dim, hidden, 1, out_gain=1.0)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, action], -1)).squeeze(-1)

    def q1(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """The same Q (the name attacks use for a critic's first Q)."""
        return self(obs, action)

    def spec(self) -> dict[str, Any]:
        """Kind and constructor arguments."""
        return {"kind": self.kind, "obs_dim": self.obs_dim, "act_dim": self.act_dim,
                "hidden": self.hidden}


class TwinQ(nn.Module):
    """TD3's twin critics Q_1, Q_2 (Fujimoto et al. 2018) as one network batched over the
    pair: each layer's weights are ``(2, in, out)``, so both critics cost one batched matmul
    per layer instead of two calls. ReLU MLPs on the concatenated (normalised observation,
    action in action units), initialised as ``nn.Linear`` (uniform in +-1/sqrt(fan_in)), as
    the authors' code.

    Args:
        obs_dim, act_dim: sizes; hidden: hidden sizes (256, 256 for TD3).
        hidden_dtype: dtype of the hidden-to-hidden products (:data:`HIDDEN_DTYPES`).

    Raises:
        ValueError: an unknown ``hidden_dtype``.
    """

    kind: ClassVar[str] = "twin_q"

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int],
                 hidden_dtype: str = "float32") -> None:
        super().__init__()
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self.hidden = [int(h) for h in hidden]
        self.hidden_dtype, self.low_dtype = hidden_dtype, low_precision_dtype(hidden_dtype)
        sizes = [self.obs_dim + self.act_dim, *self.hidden, 1]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in itertools.pairwise(sizes):
            bound = 1.0 / math.sqrt(fan_in)
            self.weights.append(nn.Parameter(torch.empty(2, fan_in, fan_out).uniform_(-bound,
                                                                                     bound)))
            self.biases.append(nn.Parameter(torch.empty(2, 1, fan_out).uniform_(-bound, bound)))

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Both critics' values ``(2, batch)`` at actions ``(batch, act_dim)``, or each critic
        at its own actions ``(2, batch, act_dim)``."""
        if action.dim() == 3:
            x = torch.cat([obs.expand(2, -1, -1), action], -1)
        else:
            x = torch.cat([obs, action], -1).expand(2, -1, -1)
        last = len(self.weights) - 1
        for i in range(last + 1):
            x = self._layer(i, x)
            if i < last:
                x = torch.relu(x)
        return x.squeeze(-1)

    def _product_dtype(self, i: int) -> torch.dtype | None:
        """The dtype of layer ``i``'s product: the low precision one for hidden-to-hidden
        layers if there is one, else None (float32)."""
        return self.low_dtype if 0 < i < len(self.weights) - 1 else None

    def _layer(self, i: int, x: torch.Tensor, critic: int | None = None) -> torch.Tensor:
        """Layer ``i``'s affine map of both critics' ``(2, batch, in)``, or of one
        ``critic``'s ``(batch, in)``, in :meth:`_product_dtype`'s dtype."""
        w, b = self.weights[i], self.biases[i]
        if critic is not None:
            w, b = w[critic], b[critic]
        elif i == len(self.weights) - 1:  # the output layer, one column: row-wise dot products
            return _dot_rows(x, w) + b
        dtype = self._product_dtype(i)
        if dtype is None:  # the bias fused into the product
            return (torch.baddbmm if critic is None else torch.addmm)(b, x, w)
        return _product(torch.bmm if critic is None else torch.mm, x, w, dtype) + b

    def forward_cached(self, obs_part: torch.Tensor, action: torch.Tensor
                       ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Both critics' values ``(2, batch)`` at actions ``(2, batch, act_dim)`` and the
        hidden activations, for :meth:`action_gradient`; ``obs_part`` is
        :meth:`observation_part`'s, computed once for many actions at the same observations
        (the solvers' iterates). Equal to :meth:`forward` up to float rounding (the first
        layer's sum is split); call under no_grad."""
        x = torch.relu(torch.baddbmm(obs_part, action, self.weights[0][:, self.obs_dim:]))
        hidden = [x]
        for i in range(1, len(self.weights) - 1):
            x = torch.relu(self._layer(i, x))
            hidden.append(x)
        return self._layer(len(self.weights) - 1, x).squeeze(-1), hidden

    def observation_part(self, obs: torch.Tensor) -> torch.Tensor:
        """The observations' share of the first layer, bias included: ``(2, batch,
        hidden[0])`` for normalised observations ``(batch, obs_dim)``."""
        return torch.baddbmm(self.biases[0], obs.expand(2, -1, -1),
                             self.weights[0][:, :self.obs_dim])

    def action_gradient(self, hidden: list[torch.Tensor], grad_out: torch.Tensor
                        ) -> torch.Tensor:
        """d loss / d action ``(2, batch, act_dim)`` by the chain rule, given d loss / d
        values ``(2, batch)`` and :meth:`forward_cached`'s activations, for the eps-ball
        solvers: no graph, and ReLU's derivative as one ``threshold_backward`` per layer (a
        PGD step about a fifth faster than autograd's, docs/benchmarks.md). Each row depends
        on its own row of ``grad_out`` only."""
        g = grad_out.unsqueeze(-1) * self.weights[-1].transpose(1, 2)
        for i in range(len(hidden) - 1, -1, -1):
            g = torch.ops.aten.threshold_backward(g, hidden[i], 0.0)  # ReLU's derivative
            w = self.weights[0][:, self.obs_dim:] if i == 0 else self.weights[i]
            g = _product(torch.bmm, g, w.transpose(1, 2), self._product_dtype(i))
        return g

    def q1(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """The first critic alone, shape ``(batch,)`` (TD3's actor follows Q_1)."""
        x = torch.cat([obs, action], -1)
        last = len(self.weights) - 1
        for i in range(last + 1):
            x = self._layer(i, x, critic=0)
            if i < last:
                x = torch.relu(x)
        return x.squeeze(-1)

    def spec(self) -> dict[str, Any]:
        """Kind and constructor arguments."""
        return {"kind": self.kind, "obs_dim": self.obs_dim, "act_dim": self.act_dim,
                "hidden": self.hidden, "hidden_dtype": self.hidden_dtype}


MODULE_KINDS: dict[str, type[nn.Module]] = {
    cls.kind: cls for cls in (GaussianActor, DeterministicActor, ValueNet, ActionValueNet,
                              TwinQ)
}


def build_module(spec: dict[str, Any]) -> nn.Module:
    """Rebuild an (untrained) module from its :meth:`spec`.

    Raises:
        KeyError: unknown kind; TypeError: arguments that do not fit the kind.
    """
    args = dict(spec)
    return MODULE_KINDS[args.pop("kind")](**args)
