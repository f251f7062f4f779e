"""Landscape slices: filter-normalised directions, the slice's centre is the agent itself,
the line between two agents ends at the second actor."""

from pathlib import Path

import numpy as np
import pytest
import torch

from robustpo.agents.agent import load_agent
from robustpo.analysis.landscape import (
    actor_parameters,
    direction_between,
    filter_normalized_direction,
    landscape,
    moved,
)
from robustpo.errors import ConfigError
from robustpo.results.suite import evaluate

ZOO = Path(__file__).resolve().parents[1] / "zoo"


@pytest.fixture(scope="module")
def agent():
    return load_agent(ZOO / "ppo-Hopper-v5")


def test_directions_are_filter_normalised_and_leave_biases(agent):
    direction = filter_normalized_direction(agent, torch.Generator().manual_seed(0))
    params = actor_parameters(agent)
    for name, d in direction.items():
        if params[name].dim() < 2:
            assert not d.any()
        else:
            assert torch.allclose(d.norm(dim=1), params[name].norm(dim=1), rtol=1e-5)


def test_the_slice_at_step_zero_is_the_agents_evaluated_return(agent):
    direction = filter_normalized_direction(agent, torch.Generator().manual_seed(0))
    points = landscape(agent, [direction], [np.array([-0.05, 0.0, 0.05])], episodes=2,
                       attack="random", seed=3)
    natural = evaluate(agent, 2, None, 0.0, seed=3)
    attacked = evaluate(agent, 2, "random", agent.attack_eps, seed=3)
    centre = points[1]
    assert centre.coords == (0.0,)
    assert centre.natural[0] == natural.stats.mean
    assert centre.attacked[0] == attacked.stats.mean
    assert points[0].natural[0] != natural.stats.mean  # the other points moved


def test_the_line_between_two_agents_ends_at_the_second_actor(agent):
    other = load_agent(ZOO / "barppo-Hopper-v5")
    end = moved(agent, [(1.0, direction_between(agent, other))])
    for name, value in actor_parameters(end).items():
        assert torch.allclose(value, actor_parameters(other)[name], atol=1e-6)


def test_learned_attacks_and_bad_slices_are_clear_errors(agent):
    direction = filter_normalized_direction(agent, torch.Generator().manual_seed(0))
    with pytest.raises(ConfigError, match="retrained at every point"):
        landscape(agent, [direction], [np.array([0.0])], attack="sarl")
    with pytest.raises(ConfigError, match="1 or 2 directions"):
        landscape(agent, [direction] * 3, [np.array([0.0])] * 3)
