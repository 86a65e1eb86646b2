"""The state store's AWS clients: DynamoDB's (``dynamostore``) and the KMS seal's (``kmsseal``).

Both come from the AWS border (``keymgmt_cli/aws``: boto3's default credential chain, standard
retries, timeouts, plain http only to loopback), with the same settings; a failure to make one
reads "cannot set up the AWS ... client". Its own module so that the seal does not import the
DynamoDB store to get a KMS client, and the leases can bound a renewal by the request timeouts.
"""

from __future__ import annotations

from typing import Any

from ..aws.failures import Failure
from ..aws.session import default_client
from ..errors import ProviderError

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 20.0
MAX_ATTEMPTS = 8


def make_client(service: str, region: str, endpoint: str | None) -> Any:
    """A client of ``service`` with boto3's default credential chain, standard retries and
    timeouts (``aws.session``); a failure to make it reads "cannot set up the AWS ... client"."""

    def word(failure: Failure) -> ProviderError:
        return failure.error(f"cannot set up the AWS {service} client for {region}: "
                             f"{failure.message}")

    return default_client(service, region, endpoint, wording=word, max_attempts=MAX_ATTEMPTS,
                          connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
                          max_pool_connections=10)
