"""Test kit for selfheal and its users: a real control plane, a simulated Argo Rollouts controller, LLM and GitHub stand-ins."""
