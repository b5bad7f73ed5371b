"""The local Lambda runtime drops the metrics Powertools keeps when metrics are disabled."""

from __future__ import annotations

from pathlib import Path

import pytest

from plumsms_local.lambda_runtime import LocalFunction

HANDLER = """
from aws_lambda_powertools import Metrics

metrics = Metrics(namespace="Test", service="local-runtime-test")


@metrics.log_metrics
def lambda_handler(event, context):
    metrics.add_metric(name="Handled", unit="Count", value=1)
    return {"ok": True}
"""


def test_disabled_metrics_do_not_pile_up_into_a_printed_blob(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN metrics disabled, as make run sets them, and a handler that records one metric
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    handler = tmp_path / "app.py"
    handler.write_text(HANDLER)
    function = LocalFunction("MetricsTest", handler)
    # WHEN it runs more times than Powertools' 100-value buffer holds
    for _ in range(150):
        assert function.invoke({}) == {"ok": True}
    # THEN nothing was printed: Powertools' buffer never reached its forced flush
    assert '"_aws"' not in capsys.readouterr().out
