"""The AWS border: the only package of keymgmt that imports boto3 or botocore.

* ``codes``: AWS tables declared once (request quotas, throttling/transient/credential error
  codes); no boto3, so the in-memory twin and the pacing use them too.
* ``transport``: which endpoints may be used (plain http only to loopback, https elsewhere).
* ``pacing``: client-side pacing at AWS's request quotas (token bucket, the schedule that the
  processes of one user share). No boto3.
* ``session``: one botocore session (and data loader) per process, credentials per provider,
  and the one client factory (retries, timeouts, connection pool, endpoint check).
* ``failures``: ``failure_of`` reads any botocore exception into a library-free ``Failure``;
  ``translate`` turns it into one ``ProviderError`` worded by the calling service.
* ``sigv4``: SigV4 for a JSON 1.1 ``POST /``, equal to botocore's ``SigV4Auth`` (no boto3).
* ``bulkread``: many read-only requests of one operation without botocore's client (hand-signed,
  keep-alive ``http.client``), with botocore's endpoint, CA bundle and credentials; used only for
  the tag search's ListResourceTags on every key, where botocore's ~1.5 ms of CPU per request
  bounded ``verify`` at 10,000 keys. It says why not where it cannot match botocore's transport.

Users (``providers/awskms*.py``, ``store/dynamostore.py``, ``store/awsclient.py``,
``store/kmsseal.py``) import the modules that need boto3 lazily, so ``read``/``list`` never load
it. Importing this package itself imports nothing.
"""
