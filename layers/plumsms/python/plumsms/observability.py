"""The Powertools logger, tracer and metrics, created once for every function.

Logs carry ids, never phone numbers or bodies (those are personal data); anything that
must show content does so at DEBUG only.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="PlumSms")
