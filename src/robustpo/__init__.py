"""robustpo: adversarially robust deep reinforcement learning for continuous control.

Python API (mirrors the command line)::

    import robustpo
    result = robustpo.train("ppo", "Hopper-v5", steps=200_000, out="runs/hopper")
    agent = robustpo.load_agent("runs/hopper")
    action = agent.act(obs)                       # raw observation in, action out
    res = robustpo.evaluate(agent, episodes=50, attack="random", eps=0.075)

Layout: ``core`` (networks, Gaussian algebra, normalisation, GAE, eps-ball solvers, IBP,
environments), ``config`` (config sections), ``io`` (checkpoints, run directories),
``agents`` (agents, the Stable-Baselines3 adapter), ``adversaries`` (training methods),
``learners`` (PPO), ``training`` (presets, driver, callbacks), ``evaluation`` (the episode
protocol), ``attacks`` (observation attacks), ``results`` (suites, tables, comparisons).
"""

__version__ = "0.3.0"

from .agents.agent import Agent, load_agent
from .evaluation.episodes import EvalResult, ReturnStats
from .results.suite import evaluate
from .training.driver import TrainResult, train

__all__ = [
    "Agent", "EvalResult", "ReturnStats", "TrainResult", "__version__", "evaluate",
    "load_agent", "train",
]
