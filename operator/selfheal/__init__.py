"""selfheal: an operator that makes Argo Rollouts canary deployments heal themselves."""

__version__ = "0.1.0"

GROUP = "selfheal.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
