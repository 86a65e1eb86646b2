"""Reading every key's tags for the tag search's listing (``AwsKmsProvider.list_tags_of_keys``).

Two ways, one answer (``base.TagReading``): ``aws.bulkread`` sends the ListResourceTags requests
itself (hand-signed, keep-alive connections, ``bulkread.WORKERS`` in flight: ~0.4 ms of client
CPU each), with the endpoint, CA bundle and credentials botocore would use; where it cannot match
botocore's transport (a proxy, a client certificate, a mock answering botocore's requests...) or
the endpoint refuses its signature, the provider's botocore client reads them in
``tagsearch.LISTING_WORKERS`` threads (~1.5 ms each under one GIL). ``how`` says which and why;
verify's note repeats it once. A key refused with ``NOT_READABLE_CODES`` is not ours; any other
failure, after the retries, raises the provider's one-line ``ProviderError``: a key whose tags
were not read is not a key proven not ours. Split from ``awskms.py`` so that the provider stays
one method per KMS operation.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from ..aws import failures
from ..errors import ProviderError
from . import tagsearch
from .base import NOT_READABLE_CODES, TagReading, sample_ids

# An endpoint that refuses keymgmt's own SigV4 for these is answered by botocore instead.
SIGNATURE_CODES = frozenset({"InvalidSignatureException", "IncompleteSignature", "SignatureDoesNotMatch"})


def read(provider: Any, key_ids: list[str]) -> TagReading:
    """``provider.list_tags_of_keys(key_ids)`` of an ``AwsKmsProvider`` (see the module's note)."""
    reader = provider.bulk_reader()
    if isinstance(reader, str):
        return by_botocore(provider, key_ids, f"botocore ({tagsearch.LISTING_WORKERS} threads): {reader}")
    bodies = [json.dumps({"KeyId": k, "Limit": 50}).encode() for k in key_ids]
    batch = reader.run("ListResourceTags", bodies, lambda: provider.before_request("ListResourceTags"),
                       stop=lambda reply: reply.failure is not None and not _not_ours(reply.failure))
    if batch.stopped is not None:  # no key read past it; the first such failure decides
        failure = batch.stopped.failure
        if failure.code in SIGNATURE_CODES:
            # the endpoint wants a signature botocore would make and ours is not: botocore, said
            return by_botocore(provider, key_ids, f"botocore ({tagsearch.LISTING_WORKERS} threads): the "
                                                  f"endpoint refused keymgmt's own signature ({failure.code})",
                               spent=batch.requests)
        raise provider.word_failure(failure)
    reading = TagReading(tags={}, requests=batch.requests, throttled=batch.throttled,
                         how=f"keymgmt's own signed requests ({urlsplit(reader.endpoint_url).scheme}, "
                             f"{batch.in_flight} in flight)")
    refused_ids: list[str] = []
    for key_id, reply in zip(key_ids, batch.replies):
        failure = reply.failure
        if failure is None:
            answer = reply.answer or {}
            if answer.get("Truncated") and answer.get("NextMarker"):  # over 50 tags: rare
                provider.take_request_ids()
                reading.tags[key_id] = provider.list_resource_tags(key_id)
                reading.requests += len(provider.take_request_ids())
            else:
                reading.tags[key_id] = {t["TagKey"]: t.get("TagValue", "")
                                        for t in answer.get("Tags", []) if "TagKey" in t}
        elif _not_ours(failure):
            reading.tags[key_id] = None
            reading.refused += 1
            refused_ids.append(reply.request_id)
        else:  # run() stops on any other failure; kept so that a key unread is never taken as not ours
            raise provider.word_failure(failure)
    reading.request_ids = sample_ids([r.request_id for r in batch.replies], refused_ids)
    return reading


def _not_ours(failure: Any) -> bool:
    """AWS answered that this key cannot be read by us (AccessDenied, NotFound): not ours."""
    return failure.kind == failures.RESPONSE and failure.code in NOT_READABLE_CODES


def by_botocore(provider: Any, key_ids: list[str], how: str, spent: int = 0) -> TagReading:
    """The same read through the provider's botocore client, ``LISTING_WORKERS`` threads; each
    thread takes the request ids of its own requests (``take_request_ids`` is per thread)."""
    reading = TagReading(tags={}, requests=spent, how=how)
    ids_of: list[list[str]] = [[] for _ in key_ids]
    refused_ids: list[str] = []

    def read(index: int) -> dict[str, str] | None:
        provider.take_request_ids()
        try:
            return provider.list_resource_tags(key_ids[index])
        except ProviderError as error:
            if error.code in NOT_READABLE_CODES:
                return None
            raise
        finally:
            ids_of[index] = provider.take_request_ids()

    if len(key_ids) <= 1:
        results = [read(i) for i in range(len(key_ids))]
    else:
        with ThreadPoolExecutor(max_workers=min(tagsearch.LISTING_WORKERS, len(key_ids)),
                                thread_name_prefix="keymgmt-tags") as pool:
            results = list(pool.map(read, range(len(key_ids))))
    for key_id, tags, ids in zip(key_ids, results, ids_of):
        reading.tags[key_id] = tags
        reading.requests += len(ids)
        if tags is None:
            reading.refused += 1
            refused_ids += ids[-1:]
    reading.request_ids = sample_ids([i for ids in ids_of for i in ids], refused_ids)
    return reading
