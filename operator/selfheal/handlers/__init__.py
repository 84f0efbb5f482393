"""Kopf glue only: decorators, parse kwargs into models, call one service, map errors."""
