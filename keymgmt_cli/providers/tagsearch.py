"""Finding the KMS keys that carry our tags, at a cost that does not grow with other teams' keys.

Used by verify (strays) and by recovery after a lost ``CreateKey`` response. Two paths:

* ``tag:GetResources`` (Resource Groups Tagging API) with a tag filter on our tags and
  ``ResourceTypeFilters=["kms:key"]``: one paginated call per region, whatever else the
  account holds. Needs the optional IAM action ``tag:GetResources``.
* where that is refused (no permission, an emulator without it, an endpoint that does not serve
  it): ``ListKeys``, then ``provider.list_tags_of_keys`` (ListResourceTags on every key,
  concurrently, paced at its quota, 2,000/s). ``AwsKmsProvider`` sends those with keymgmt's own
  signed requests (``aws.bulkread``, ~0.4 ms of client CPU each, 96 in flight) where that matches
  botocore's transport, else through botocore (``LISTING_WORKERS`` threads sharing one client,
  ~1.5 ms each under one GIL). 10,000 foreign keys then cost ~4 s of CPU and the quota's 5.5 s of
  wall (``bench/verify_scale.py``, bench/README.md); tag:GetResources is still one call.

``TagSearch`` remembers for one provider family which path works (the refusal is not asked
again) and words once which path was taken (``note``), for the caller to show.
No boto3 here: the in-memory twin uses it too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ..errors import ProviderError

GET_RESOURCES = "tag:GetResources"
LISTING = "ListKeys + ListResourceTags"
LISTING_WORKERS = 48


def matches(tags: dict[str, str], wanted: dict[str, str]) -> bool:
    return all(tags.get(k) == v for k, v in wanted.items())


def tag_filters(wanted: dict[str, str]) -> list[dict[str, Any]]:
    return [{"Key": str(k), "Values": [str(v)]} for k, v in wanted.items()]


def listing(provider: Any, wanted: dict[str, str]) -> tuple[list[str], str]:
    """Key ids among ``provider.list_keys()`` whose tags include ``wanted``, and how the tags were
    read. Keys whose tags we may not read (AWS managed keys, other teams' key policies) are not
    ours; any other failure raises (a key not read is not a key proven not ours)."""
    ids = provider.list_keys()
    if not ids:
        return [], ""
    reading = provider.list_tags_of_keys(ids)
    found = [k for k in ids if (tags := reading.tags.get(k)) is not None and matches(tags, wanted)]
    return found, reading.how


def by_listing(provider: Any, wanted: dict[str, str]) -> list[str]:
    """``listing`` without the how (the recovery search)."""
    return listing(provider, wanted)[0]


class TagSearch:
    """Which path finds tagged keys for one provider family, decided on first use."""

    def __init__(self) -> None:
        self.path: str | None = None  # GET_RESOURCES or LISTING once decided
        self.note: str | None = None  # one line saying which path was taken and why
        self._lock = threading.Lock()

    def run(self, provider: Any, wanted: dict[str, str],
            get_resources: Callable[[dict[str, str]], list[str]]) -> list[str]:
        if not wanted:
            raise ValueError("find_tagged needs at least one tag to filter on")
        with self._lock:
            path = self.path
        if path != LISTING:
            try:
                found = get_resources(wanted)
            except ProviderError as refused:
                if path == GET_RESOURCES and refused.retryable:
                    raise  # it worked before: a transient failure is not a refusal
                with self._lock:
                    self.path = LISTING
                    self.note = (f"keys tagged as ours found with {LISTING} on every key of "
                                 f"{provider.region}: {GET_RESOURCES} was refused "
                                 f"({refused.code}); allowing it makes this one call")
            else:
                with self._lock:
                    if self.path is None:
                        self.path = GET_RESOURCES
                        self.note = (f"keys tagged as ours found with {GET_RESOURCES} "
                                     f"in {provider.region}")
                return found
        found, how = listing(provider, wanted)
        with self._lock:
            if how and self.note and "; tags read with" not in self.note:
                self.note += f"; tags read with {how}"
        return found
