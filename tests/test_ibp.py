"""Interval bound propagation through our tanh MLPs."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robustpo.core.ibp import interval_bounds
from robustpo.core.nets import MLP


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.0, 1.0))
def test_every_output_of_the_box_lies_within_the_bounds(seed, eps):
    torch.manual_seed(seed)
    net = MLP(5, [16, 16], 2, out_gain=1.0)
    g = torch.Generator().manual_seed(seed)
    centre = torch.randn(4, 5, generator=g)
    lb, ub = interval_bounds(net, centre - eps, centre + eps)
    assert (lb <= ub).all()
    samples = centre + (torch.rand(256, 4, 5, generator=g) * 2 - 1) * eps
    corners = centre + eps * torch.sign(torch.randn(256, 4, 5, generator=g))
    with torch.no_grad():
        for x in (samples, corners):
            out = net(x.reshape(-1, 5)).reshape(256, 4, 2)
            assert (out >= lb - 1e-5).all() and (out <= ub + 1e-5).all()


def test_a_point_box_gives_the_forward_pass_and_width_grows_with_eps():
    torch.manual_seed(0)
    net = MLP(3, [8, 8], 1, out_gain=1.0)
    x = torch.randn(5, 3)
    lb, ub = interval_bounds(net, x, x)
    with torch.no_grad():
        torch.testing.assert_close(lb, net(x))
        torch.testing.assert_close(ub, net(x))
    widths = [(u - lo).mean().item() for lo, u in (interval_bounds(net, x - e, x + e)
                                                   for e in (0.01, 0.1, 0.5))]
    assert widths[0] < widths[1] < widths[2]
