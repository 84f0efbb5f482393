"""What `kopf run -m selfheal.main` loads: the handlers, nothing else."""

from selfheal.handlers import analysisruns, policies, rollouts, startup, tickets  # noqa: F401
