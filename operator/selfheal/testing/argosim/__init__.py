"""A simulated Argo Rollouts controller for the tests, faithful to the API contract."""

from selfheal.testing.argosim.simulator import ArgoSimulator

__all__ = ["ArgoSimulator"]
