"""Gather (adapters) -> decide (domain) -> act (adapters). No kopf here."""
