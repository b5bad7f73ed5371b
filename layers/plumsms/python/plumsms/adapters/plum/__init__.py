"""Plum DEV's SMS REST API over HTTP: the ``PlumGateway`` adapter."""

from plumsms.adapters.plum.client import QUERY_PARAMETERS, PlumClient

__all__ = ["QUERY_PARAMETERS", "PlumClient"]
