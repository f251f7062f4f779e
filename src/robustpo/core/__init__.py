"""Core pieces shared by training, attacks and evaluation: networks, Gaussian policy algebra,
running normalisation, GAE, the eps-ball solvers, IBP and the environment factory."""
