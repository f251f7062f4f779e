import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from robustpo.attacks import make_attack
from robustpo.core.perturb import check_in_ball, project_linf
from robustpo.errors import PerturbationOutOfBallError

floats = st.floats(-20, 20, allow_nan=False, width=32)


@settings(max_examples=100, deadline=None)
@given(arrays("float32", (5, 3), elements=floats), arrays("float32", (5, 3), elements=floats),
       st.floats(0.0, 2.0))
def test_projection_lands_in_ball_and_is_idempotent(clean, cand, eps):
    clean, cand = torch.from_numpy(clean), torch.from_numpy(cand)
    proj = project_linf(cand, clean, eps)
    assert (proj - clean).abs().max() <= eps + 1e-5
    check_in_ball(proj, clean, eps, "test")
    assert torch.allclose(project_linf(proj, clean, eps), proj, atol=1e-6)
    inside = (cand - clean).abs() <= eps
    assert torch.equal(proj[inside], cand[inside])  # points already inside do not move


@settings(max_examples=50, deadline=None)
@given(arrays("float32", (7, 4), elements=floats), st.floats(0.0, 1.0), st.integers(0, 1000))
def test_random_attack_stays_in_ball(clean, eps, seed):
    clean = torch.from_numpy(clean)
    out = make_attack("random", seed=seed).perturb(None, clean, eps)
    check_in_ball(out, clean, eps, "random")


def test_check_in_ball_rejects_outside_and_nan():
    clean = torch.zeros(2, 3)
    bad = clean.clone()
    bad[1, 2] = 0.2
    with pytest.raises(PerturbationOutOfBallError, match=r"outside the eps-ball of radius 0.1"):
        check_in_ball(bad, clean, 0.1, "broken")
    bad[1, 2] = float("nan")
    with pytest.raises(PerturbationOutOfBallError):
        check_in_ball(bad, clean, 0.1, "broken")
    with pytest.raises(ValueError):
        project_linf(clean, clean, -1.0)
