"""Test kit: a real control plane, a simulated Argo Rollouts controller, LLM, A2A and GitHub stand-ins."""
