"""PlumClient's configuration and input checks, before any request (no sockets)."""

from __future__ import annotations

from typing import Any, cast

import pytest
import urllib3

from plumsms.adapters.plum import QUERY_PARAMETERS, PlumClient
from plumsms.domain.errors import ConfigurationError, ValidationFailed


class _NoNetworkPool:
    """Stands in for urllib3.PoolManager and fails the test if a request is made."""

    def request(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("no request expected")


def _client(**kwargs: Any) -> PlumClient:
    pool = cast(urllib3.PoolManager, _NoNetworkPool())
    return PlumClient("https://plum.invalid/ws/", "user", "secret", pool=pool, **kwargs)


@pytest.mark.parametrize(
    ("base_url", "username", "password", "fmt"),
    [
        ("ftp://plum.invalid/ws/", "user", "secret", "json"),
        ("hosting.plumvoice.com/ws/", "user", "secret", "json"),
        ("https://plum.invalid/ws/", "", "secret", "json"),
        ("https://plum.invalid/ws/", "us:er", "secret", "json"),
        ("https://plum.invalid/ws/", "user", "", "json"),
        ("https://plum.invalid/ws/", "user", "secret", "yaml"),
    ],
)
def test_bad_configuration_is_refused(
    base_url: str, username: str, password: str, fmt: str
) -> None:
    with pytest.raises(ConfigurationError):
        PlumClient(base_url, username, password, fmt=fmt)  # type: ignore[arg-type]


def test_negative_retries_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        PlumClient("https://plum.invalid/ws/", "user", "secret", retries=-1)


@pytest.mark.parametrize(
    ("to", "from_", "body", "field"),
    [
        ("not a number", "+12435678910", "Hi", "to"),
        ("+19998881234", "", "Hi", "from"),
        ("+19998881234", "+12435678910", "", "body"),
    ],
)
def test_queue_validates_before_sending(to: str, from_: str, body: str, field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        _client().queue(to, from_, body)
    assert caught.value.field == field


def test_status_validates_the_id_before_sending() -> None:
    with pytest.raises(ValidationFailed) as caught:
        _client().status("12345")
    assert caught.value.field == "sms_message_id"


def test_conversation_validates_numbers_before_sending() -> None:
    with pytest.raises(ValidationFailed) as caught:
        _client().conversation("+12435678910", "12")
    assert caught.value.field == "customer_number"


def test_inferred_parameter_names_live_in_one_read_only_mapping() -> None:
    assert QUERY_PARAMETERS["sms_message_id"] == "sms_message_id"
    with pytest.raises(TypeError):
        QUERY_PARAMETERS["offset"] = "skip"  # type: ignore[index]
