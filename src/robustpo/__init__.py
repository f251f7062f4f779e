"""robustpo: adversarially robust deep reinforcement learning for continuous control.

Python API (mirrors the command line)::

    import robustpo
    result = robustpo.train("ppo", "Hopper-v5", steps=200_000, out="runs/hopper")
    agent = robustpo.load_agent("runs/hopper")
    action = agent.act(obs)                       # raw observation in, action out
    res = robustpo.evaluate(agent, episodes=50, attack="random", eps=0.075)
"""

__version__ = "0.1.0"

from .agent import Agent, load_agent
from .evaluate import EvalResult, ReturnStats, evaluate
from .train import TrainResult, train

__all__ = [
    "Agent", "EvalResult", "ReturnStats", "TrainResult", "__version__", "evaluate",
    "load_agent", "train",
]
