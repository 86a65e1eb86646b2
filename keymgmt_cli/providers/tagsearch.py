"""Finding the KMS keys that carry our tags, at a cost that does not grow with other teams' keys.

Used by verify (strays) and by recovery after a lost ``CreateKey`` response. Two paths:

* ``tag:GetResources`` (Resource Groups Tagging API) with a tag filter on our tags and
  ``ResourceTypeFilters=["kms:key"]``: one paginated call per region, whatever else the
  account holds. Needs the optional IAM action ``tag:GetResources``.
* where that is refused (no permission, an emulator without it, an endpoint that does not serve
  it): ``ListKeys`` and ``ListResourceTags`` on every key, concurrently (``LISTING_WORKERS``
  requests in flight; the provider paces them at ListResourceTags' quota, 2,000/s). All of them
  share the provider's one botocore client (thread-safe). Its cost is N requests of the client's
  CPU, ~1.5 ms each in botocore under one GIL: 10,000 keys take ~15 s of CPU whatever the thread
  count (past 48 nothing moves; ``bench/verify_scale.py``, bench/README.md), so in a shared
  account the answer is to allow tag:GetResources, which the note says.

``TagSearch`` remembers for one provider family which path works (the refusal is not asked
again) and words once which path was taken (``note``), for the caller to show.
No boto3 here: the in-memory twin uses it too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import ProviderError

GET_RESOURCES = "tag:GetResources"
LISTING = "ListKeys + ListResourceTags"
LISTING_WORKERS = 48


def matches(tags: dict[str, str], wanted: dict[str, str]) -> bool:
    return all(tags.get(k) == v for k, v in wanted.items())


def tag_filters(wanted: dict[str, str]) -> list[dict[str, Any]]:
    return [{"Key": str(k), "Values": [str(v)]} for k, v in wanted.items()]


def by_listing(provider: Any, wanted: dict[str, str], workers: int | None = None) -> list[str]:
    """Key ids among ``provider.list_keys()`` whose tags include ``wanted``; keys whose tags we
    may not read (AWS managed keys, other teams' key policies) are not ours. ``workers``:
    requests in flight, ``LISTING_WORKERS`` (read at call time) unless given."""
    workers = workers or LISTING_WORKERS
    ids = provider.list_keys()

    def tags_of(key_id: str) -> dict[str, str] | None:
        try:
            return provider.list_resource_tags(key_id)
        except ProviderError:
            return None

    if len(ids) <= 1:
        results = [tags_of(k) for k in ids]
    else:
        with ThreadPoolExecutor(max_workers=min(workers, len(ids)),
                                thread_name_prefix="keymgmt-tags") as pool:
            results = list(pool.map(tags_of, ids))
    return [k for k, tags in zip(ids, results) if tags is not None and matches(tags, wanted)]


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
        return by_listing(provider, wanted)
