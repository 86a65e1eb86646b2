"""The team state store on Amazon DynamoDB: one item per document, versioned writes, leases.

Selected with ``KEYMGMT_STORAGE=dynamodb://TABLE?region=R[&endpoint=URL]``. Its client comes
from the AWS border (``awsclient.make_client``: boto3's default credential chain, standard retries,
timeouts, plain http only to loopback); callers import this module lazily, so the local backend
never loads boto3. This module is the DocumentStore contract and the table's life (init, wait,
Scan for collections) on the item layout documented below; the leases behind ``lock`` and the
versions behind conditional writes are ``dynamoleases.py`` (``LeasedWrites``, which the store
stands on).

Table layout (``keymgmt operator init`` creates it: on-demand capacity, TTL on ``lease_ttl``):

=============  ====  ===========================================================================
attribute      type  meaning
=============  ====  ===========================================================================
``pk``         S     partition key: ``/`` + the document's collection (``/ns/<uuid>/keys``;
                     ``/`` alone for top-level documents such as ``state``), or ``#lease``
``sk``         S     sort key: the document's last id segment (``k1``), or the lease name
``doc``        S     the document as compact JSON
``ver``        N     version: random on creation, +1 on every write
``by``, ``at`` S, N  who wrote it last (host:pid) and when (epoch seconds), for messages
``owner``      S     lease items: host:pid:random of the holder
``expires``    N     lease items: epoch seconds (the holder's clock) when the lease lapses
``lease_ttl``  N     lease items: TTL attribute, so DynamoDB eventually removes dead leases
=============  ====  ===========================================================================

Costs: ``get`` is one strongly consistent ``GetItem``; ``list`` is one ``Query`` on the
collection's partition (keys only; a further page per ~1 MB of names); ``put`` is one
conditional ``PutItem``; ``delete`` one conditional ``DeleteItem``. ``delete_collection`` (used
when a mount is disabled) is a ``Scan`` of the table plus batched deletes: it is the one rare
operation whose cost grows with the table.

Consistency across machines: the store remembers the version of every document it has read (or
written). ``put`` writes only if the item still has that version (``attribute_not_exists`` when
it was read as missing or never read), so an update made meanwhile by another runner is never
overwritten: the write fails with "concurrent update ... re-run the command". The engine reads
every document under its lock right before writing it, so under the locks this never fires; it
is the safety net for everything else.

Locks are *leases* (``dynamoleases.py``): an item ``(#lease, name)`` taken with a conditional
``PutItem``, renewed in the background while held, expiring after ``KEYMGMT_LEASE_SECONDS`` when
its runner died; a runner that lost its lease writes nothing more.

Every botocore error becomes a ``ProviderError`` (exit 2) naming the operation, the table, the
region and, when access is denied, the IAM action (``dynamodb:PutItem``).
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..aws import failures
from ..aws.codes import ACCESS_CODES, CREDENTIAL_CODES, DYNAMODB_THROTTLING_CODES
from ..aws.failures import Failure
from ..errors import ProviderError, StoreError
from .awsclient import make_client
from .base import check_store_id
from .dynamoleases import DEFAULT_LEASE_SECONDS, TTL_ATTRIBUTE, ConditionFailed, LeasedWrites

#: DynamoDB's item limit is 400 KB (names and values); stay clear of it with a clear message.
MAX_DOC_BYTES = 390_000


class DynamoStore(LeasedWrites):
    """``DocumentStore`` on one DynamoDB table; passes the store contract test."""

    backend = "dynamodb"

    def __init__(self, table: str, region: str, endpoint: str | None = None, *,
                 home: str | os.PathLike[str] | None = None,
                 lease_seconds: float = DEFAULT_LEASE_SECONDS, client: Any = None):
        self.table = table
        self.region = region
        self.endpoint = endpoint or None
        self.location = f"dynamodb://{table}?region={region}" + (
            f"&endpoint={endpoint}" if endpoint else "")
        #: The local KEYMGMT_HOME; the shared state keeps nothing there (no master-key files).
        self.home = Path(os.path.abspath(os.fspath(home))) if home is not None else None
        self.lease_seconds = float(lease_seconds)
        self._client = client
        self._client_lock = threading.Lock()
        super().__init__()  # versions and leases (dynamoleases.LeasedWrites)

    def __repr__(self) -> str:
        return f"DynamoStore({self.location!r})"

    # -- the client and error translation ---------------------------------------------------

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = make_client("dynamodb", self.region, self.endpoint)
        return self._client

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        method = getattr(self.client, _snake(operation))
        return failures.call(method, "dynamodb", operation, self.region, self._word, **kwargs)

    def _word(self, failure: Failure) -> Exception:
        """How a failed DynamoDB call reads (a failed condition is ours to handle: ConditionFailed)."""
        operation, code = failure.operation, failure.code
        where = f"table {self.table} in {self.region}"
        if failure.kind == failures.NO_CREDENTIALS:
            return failure.error(
                f"no AWS credentials for DynamoDB {operation} on {where}", code="NoCredentials",
                hint="set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        if failure.kind == failures.CONNECTION:
            reach = self.endpoint or f"the {self.region} endpoint"
            return failure.error(f"cannot reach DynamoDB at {reach} ({operation} on table "
                                 f"{self.table}): {code}", retryable=True)
        if failure.kind != failures.RESPONSE:
            return failure.error(f"DynamoDB {operation} on {where} failed: {code}")
        message = failure.message
        if code == "ConditionalCheckFailedException":
            return ConditionFailed(failure.item)
        if code == "ResourceNotFoundException":
            return failure.error(f"DynamoDB table {self.table} does not exist in {self.region}; "
                                 "run 'keymgmt operator init'")
        if code in ACCESS_CODES:
            return failure.error(f"DynamoDB {operation} on {where} was denied: {code} "
                                 f"(needs dynamodb:{operation})")
        if code in CREDENTIAL_CODES:
            return failure.error(f"DynamoDB {operation} on {where} was refused: {code} "
                                 "(the AWS credentials are not valid)")
        if code in DYNAMODB_THROTTLING_CODES:
            return failure.error(f"DynamoDB {operation} on {where} was throttled ({code}); "
                                 "retry later", retryable=True)
        if code == "ValidationException" and "size" in message.lower():
            return failure.error(f"DynamoDB {operation} on {where} refused the item: {message}")
        return failure.error(f"DynamoDB {operation} on {where} failed: {code}: {message[:200]}")

    # -- keys --------------------------------------------------------------------------------

    @staticmethod
    def _key(doc_id: str) -> dict[str, Any]:
        parts = check_store_id(doc_id)
        return {"pk": {"S": "/" + "/".join(parts[:-1])}, "sk": {"S": parts[-1]}}

    # -- documents ---------------------------------------------------------------------------

    def get(self, doc_id: str) -> dict[str, Any] | None:
        key = self._key(doc_id)
        item = self._call("GetItem", TableName=self.table, Key=key, ConsistentRead=True,
                          ProjectionExpression="#d, #v",
                          ExpressionAttributeNames={"#d": "doc", "#v": "ver"}).get("Item")
        if not item:
            self._remember(doc_id, 0)
            return None
        try:
            doc = json.loads(item["doc"]["S"])
            version = int(item["ver"]["N"])
        except RecursionError:  # valid JSON nested deeper than the interpreter's recursion limit
            raise self._corrupt(doc_id, "nested too deeply") from None
        except (KeyError, TypeError):  # no doc or ver attribute, or one of another DynamoDB type
            raise self._corrupt(doc_id, "its doc or ver attribute is missing or not of the type "
                                        "keymgmt writes") from None
        except ValueError as exc:  # json's or int()'s message: a position or a limit, no content
            raise self._corrupt(doc_id, str(exc)) from None
        if not isinstance(doc, dict):
            raise self._corrupt(doc_id, f"expected a JSON object, found {type(doc).__name__}")
        self._remember(doc_id, version)
        return doc

    def _corrupt(self, doc_id: str, reason: str) -> StoreError:
        """A stored item keymgmt cannot read back, named without its content (it may hold secrets)."""
        return StoreError(f"state document {doc_id} in {self.location} is corrupt ({reason})",
                          hint="restore it from a backup (point-in-time recovery), or "
                               "remove the item to forget that entity")

    def list(self, collection: str) -> list[str]:
        parts = check_store_id(collection)
        kwargs: dict[str, Any] = {
            "TableName": self.table, "ConsistentRead": True,
            "KeyConditionExpression": "#pk = :pk", "ProjectionExpression": "#sk",
            "ExpressionAttributeNames": {"#pk": "pk", "#sk": "sk"},
            "ExpressionAttributeValues": {":pk": {"S": "/" + "/".join(parts)}},
        }
        names: list[str] = []
        while True:
            page = self._call("Query", **kwargs)
            names.extend(item["sk"]["S"] for item in page.get("Items", []))
            if not page.get("LastEvaluatedKey"):
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return sorted(names)

    def put(self, doc_id: str, doc: dict[str, Any]) -> None:
        key = self._key(doc_id)
        if not isinstance(doc, dict):
            raise TypeError(f"a document must be a dict, not {type(doc).__name__}")
        body = json.dumps(doc, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        size = len(body.encode("utf-8"))
        if size > MAX_DOC_BYTES:
            raise StoreError(f"state document {doc_id} is {size // 1000} KB, over DynamoDB's "
                             "400 KB item limit", hint="remove old key versions or use the "
                                                       "local backend for this state")
        self._check_leases()
        with self._seen_lock:
            seen = self._seen.get(doc_id, 0)
        new = seen + 1 if seen else random.randrange(1, 2**40) * 1000
        item = {**key, "doc": {"S": body}, "ver": {"N": str(new)},
                "by": {"S": self._runner}, "at": {"N": f"{time.time():.3f}"}}
        if seen:
            condition = {"ConditionExpression": "#v = :seen",
                         "ExpressionAttributeNames": {"#v": "ver"},
                         "ExpressionAttributeValues": {":seen": {"N": str(seen)}}}
        else:
            condition = {"ConditionExpression": "attribute_not_exists(#pk)",
                         "ExpressionAttributeNames": {"#pk": "pk"}}
        try:
            self._call("PutItem", TableName=self.table, Item=item,
                       ReturnValuesOnConditionCheckFailure="ALL_OLD", **condition)
        except ConditionFailed as failed:
            self._forget(doc_id)
            raise self._conflict(doc_id, failed.item, created=not seen) from None
        self._remember(doc_id, new)


    def delete(self, doc_id: str) -> bool:
        key = self._key(doc_id)
        self._check_leases()
        with self._seen_lock:
            seen = self._seen.get(doc_id, 0)
        kwargs: dict[str, Any] = {"TableName": self.table, "Key": key, "ReturnValues": "ALL_OLD"}
        if seen:  # only the version we read may go; already gone is fine
            kwargs.update(ConditionExpression="attribute_not_exists(#pk) OR #v = :seen",
                          ExpressionAttributeNames={"#pk": "pk", "#v": "ver"},
                          ExpressionAttributeValues={":seen": {"N": str(seen)}},
                          ReturnValuesOnConditionCheckFailure="ALL_OLD")
        try:
            old = self._call("DeleteItem", **kwargs).get("Attributes")
        except ConditionFailed as failed:
            self._forget(doc_id)
            raise self._conflict(doc_id, failed.item, created=False) from None
        self._remember(doc_id, 0)
        return bool(old)

    def delete_collection(self, collection: str) -> None:
        """Scan for the collection's partitions, then delete in batches of 25.

        Not atomic (DynamoDB has no multi-partition rename): the engine removes the mount
        document first, so a crash midway leaves unreachable items, never a half mount.
        """
        parts = check_store_id(collection)
        self._check_leases()
        prefix = "/" + "/".join(parts)
        keys = [item for item in self._scan_keys(prefix)]
        for start in range(0, len(keys), 25):
            requests = [{"DeleteRequest": {"Key": k}} for k in keys[start:start + 25]]
            pending: dict[str, Any] = {self.table: requests}
            for attempt in range(10):
                out = self._call("BatchWriteItem", RequestItems=pending)
                pending = out.get("UnprocessedItems") or {}
                if not pending:
                    break
                time.sleep(min(0.05 * 2 ** attempt, 2.0))
            else:
                raise ProviderError(f"DynamoDB BatchWriteItem on table {self.table} in "
                                    f"{self.region} left items undeleted after 10 attempts; "
                                    "re-run the command", code="UnprocessedItems", retryable=True)
        doc_prefix = collection + "/"
        with self._seen_lock:
            for doc_id in [d for d in self._seen if d.startswith(doc_prefix)]:
                self._seen[doc_id] = 0

    def _scan_keys(self, prefix: str) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self.table, "ConsistentRead": True, "ProjectionExpression": "#pk, #sk",
            "FilterExpression": "#pk = :p OR begins_with(#pk, :pp)",
            "ExpressionAttributeNames": {"#pk": "pk", "#sk": "sk"},
            "ExpressionAttributeValues": {":p": {"S": prefix}, ":pp": {"S": prefix + "/"}},
        }
        while True:
            page = self._call("Scan", **kwargs)
            for item in page.get("Items", []):
                yield {"pk": item["pk"], "sk": item["sk"]}
            if not page.get("LastEvaluatedKey"):
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def all_ids(self) -> list[str]:
        """Every document id in the table, sorted (one Scan; for migrate and verify)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table, "ConsistentRead": True, "ProjectionExpression": "#pk, #sk",
            "FilterExpression": "begins_with(#pk, :slash)",
            "ExpressionAttributeNames": {"#pk": "pk", "#sk": "sk"},
            "ExpressionAttributeValues": {":slash": {"S": "/"}},
        }
        ids = []
        while True:
            page = self._call("Scan", **kwargs)
            for item in page.get("Items", []):
                pk, sk = item["pk"]["S"], item["sk"]["S"]
                ids.append(sk if pk == "/" else f"{pk[1:]}/{sk}")
            if not page.get("LastEvaluatedKey"):
                return sorted(ids)
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # -- the table ---------------------------------------------------------------------------

    def ensure_table(self, *, create: bool = True, wait_seconds: float = 300.0) -> str:
        """Create the table (on-demand, pk/sk, TTL on lease_ttl) or check an existing one.

        Returns one line describing what was found or done.
        """
        done = "checked"
        try:
            table = self._call("DescribeTable", TableName=self.table)["Table"]
        except ProviderError as exc:
            if exc.code != "ResourceNotFoundException" or not create:
                raise
            self._call("CreateTable", TableName=self.table, BillingMode="PAY_PER_REQUEST",
                       AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                             {"AttributeName": "sk", "AttributeType": "S"}],
                       KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                  {"AttributeName": "sk", "KeyType": "RANGE"}],
                       Tags=[{"Key": "keymgmt:purpose", "Value": "keymgmt team state"}])
            done = "created"
            table = self._wait_active(wait_seconds)
        if table.get("TableStatus") not in (None, "ACTIVE"):
            table = self._wait_active(wait_seconds)
        schema = {k["KeyType"]: k["AttributeName"] for k in table.get("KeySchema", [])}
        types = {a["AttributeName"]: a["AttributeType"]
                 for a in table.get("AttributeDefinitions", [])}
        if schema != {"HASH": "pk", "RANGE": "sk"} or types.get("pk") != "S" or types.get("sk") != "S":
            raise ProviderError(
                f"DynamoDB table {self.table} in {self.region} exists but is not a keymgmt "
                f"table (key schema {schema}; expected partition key pk and sort key sk, strings)",
                code="SchemaMismatch", hint="choose another table name in KEYMGMT_STORAGE")
        ttl = self._call("DescribeTimeToLive", TableName=self.table).get(
            "TimeToLiveDescription", {})
        ttl_note = f"TTL on {TTL_ATTRIBUTE}"
        if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
            if ttl.get("AttributeName") != TTL_ATTRIBUTE:
                ttl_note = (f"TTL is on {ttl.get('AttributeName')!r}, not {TTL_ATTRIBUTE}: dead "
                            "leases are still taken over after expiry but never cleaned up")
        else:
            self._call("UpdateTimeToLive", TableName=self.table,
                       TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE})
            ttl_note += " (enabled now)"
        billing = table.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED")
        billing_note = "on-demand" if billing == "PAY_PER_REQUEST" else "provisioned capacity"
        return f"table {self.table} in {self.region}: {done} ({billing_note}, key pk/sk, {ttl_note})"

    def _wait_active(self, wait_seconds: float) -> dict[str, Any]:
        deadline = time.monotonic() + wait_seconds
        while True:
            table = self._call("DescribeTable", TableName=self.table)["Table"]
            if table.get("TableStatus", "ACTIVE") == "ACTIVE":
                return table
            if time.monotonic() > deadline:
                raise ProviderError(f"DynamoDB table {self.table} in {self.region} is still "
                                    f"{table.get('TableStatus')} after {wait_seconds:g} s",
                                    code="TableNotActive", retryable=True)
            time.sleep(1.0)


def _snake(operation: str) -> str:
    out = []
    for i, ch in enumerate(operation):
        if ch.isupper() and i:
            out.append("_")
        out.append(ch.lower())
    return "".join(out)
