"""TD3: the off-policy family's baseline, no adversary."""

from __future__ import annotations

from .base import register
from .offpolicy import OffPolicyMethod


@register
class TD3(OffPolicyMethod):
    """Twin Delayed DDPG (Fujimoto, van Hoof, Meger, ICML 2018): the TD3 learner's defaults."""

    name = "td3"
    display_name = "TD3"
    description = "TD3: twin critics, delayed policy updates, target smoothing; no adversary"
