"""One module per outside system (Kubernetes, LLM, A2A, GitHub); each returns domain models and raises selfheal errors."""
