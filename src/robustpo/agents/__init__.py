"""Agents: named policy and critic modules with the observation normaliser they act through."""

from .agent import Agent, gaussian_agent, load_agent

__all__ = ["Agent", "gaussian_agent", "load_agent"]
