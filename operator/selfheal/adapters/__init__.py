"""One module per outside system (Kubernetes, LLM, A2A, GitHub); each returns domain models, raises selfheal errors."""
