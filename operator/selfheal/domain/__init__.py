"""Pure decisions: models of our resources and of Argo objects, log analysis, verdicts. Stdlib and pydantic only."""
