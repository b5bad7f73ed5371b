"""Serverless SMS for Plum DEV: the shared runtime package (domain, adapters, use cases)."""

__version__ = "0.1.0"
