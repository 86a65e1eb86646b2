"""In-memory twin of AWS KMS for engine tests: ``MemoryKms(region, world=None)``.

It implements ``base.KmsProvider`` with the AWS semantics the engine relies on (reference
sections 2.1-2.12), and fails with the error codes AWS uses, worded as ``awskms`` words them:

* ``CreateKey(Origin=EXTERNAL)`` gives a key in ``PendingImport`` (disabled); ``mrk-`` key IDs for
  multi-Region keys.
* ``GetParametersForImport`` returns a real RSA wrapping public key and a token bound to that key,
  valid 24 hours; ``ImportKeyMaterial`` unwraps with ``transfer.unwrap_key_material``, checks the
  material with ``keymaterial.check_material``, and only ever accepts the material first associated
  with the key (for a multi-Region key: with its primary). ``PendingImport`` → ``Enabled``.
* ``EnableKey``/``DisableKey`` fail on ``PendingImport`` and ``PendingDeletion``.
* ``ScheduleKeyDeletion`` → ``PendingDeletion`` (a multi-Region primary with live replicas →
  ``PendingReplicaDeletion``); keys really disappear, with their aliases, when the world's clock
  (``MemoryKmsWorld.advance``) passes their deletion date. Expired material → ``PendingImport``.
* Aliases: name rules, one name per region, ``UpdateAlias`` needs an existing alias and a target
  of the same type and usage that is not pending deletion.
* ``ReplicateKey`` needs an imported, enabled multi-Region primary; the replica (same key ID, in
  the other region of the same world) starts in ``PendingImport``.
* ``GetPublicKey`` returns the public half of the imported private key.
* Symmetric keys hold several materials (reference 2.10): ``ImportType=NEW_KEY_MATERIAL`` on a key
  with material stages one (``PENDING_MULTI_REGION_IMPORT_AND_ROTATION`` while a multi-Region
  primary's replicas lack it), ``EXISTING_KEY_MATERIAL`` re-imports an associated one,
  ``RotateKeyOnDemand`` (primary only, every replica holding the staged material, 25 per key)
  makes it CURRENT; ``KeyMaterialId`` = sha256(key id + material), a stand-in for AWS's derivation
  (``memory_materials.py``).

Not modelled: eventual consistency, throttling (inject them with ``fail_next``), key policies,
custom key stores, automatic rotation. Protocol-level tolerance is the same as ``awskms``:
``describe_key`` gives None for a missing key, ``schedule_key_deletion`` ignores keys already
pending deletion or gone, ``delete_alias`` ignores missing aliases.

One class, one method per operation of the provider protocol, method for method beside
``awskms.py``, so a reader compares the two side by side; each method looks the key up, checks,
and changes the world. What it stands on is apart, as awskms's is: the request's plumbing and the
key lookup (``memory_region.py``), the checks AWS makes before it acts, each with AWS's error
(``memory_rules.py``), the world (keys, aliases, tokens, clock, faults) and AWS's tables
(``memory_world.py``), what an import does to a key's material (``memory_materials.py``).
"""

from __future__ import annotations

import os
import re
import uuid
from datetime import datetime, timedelta, timezone

from cryptography.hazmat.primitives import serialization

from ..errors import ProviderError
from . import memory_materials as materials, memory_rules as rules, tagsearch
from .base import NOT_READABLE_CODES, ImportParameters, KeyDescription, TagReading, sample_ids
from .memory_region import MemoryRegion
from .memory_world import (  # the world the twin acts on (MemoryKmsWorld: the twin's other public name)
    ACCOUNT_ID, MemoryKmsWorld, TOKEN_LIFETIME, _Key, _PENDING_DELETION, _Token, _key_kind, _wrapping_key)

__all__ = ["MemoryKms", "MemoryKmsWorld"]


class MemoryKms(MemoryRegion):
    """One region of a ``MemoryKmsWorld``, one method per KMS operation (``base.KmsProvider``)."""

    # -- KmsProvider --------------------------------------------------------------------------

    def create_key(self, *, key_spec: str, key_usage: str, description: str,
                   tags: dict[str, str], multi_region: bool = False) -> str:
        op = "CreateKey"
        with self.world.lock:
            self._begin(op, tags=bool(tags), multi_region=multi_region)
            rules.check_create(key_spec, key_usage, description, tags, self._fail(op))
            key_id = f"mrk-{uuid.uuid4().hex}" if multi_region else str(uuid.uuid4())
            key = _Key(key_id=key_id, region=self.region, key_spec=key_spec, key_usage=key_usage,
                       description=description or "", multi_region=bool(multi_region),
                       created=self.world.now(), tags=dict(tags or {}),
                       mr_type="PRIMARY" if multi_region else None,
                       primary_region=self.region if multi_region else None)
            self.world.region(self.region).keys[key_id] = key
            return key_id

    def get_parameters_for_import(self, key_id: str, wrapping_algorithm: str,
                                  wrapping_key_spec: str) -> ImportParameters:
        op = "GetParametersForImport"
        with self.world.lock:
            self._begin(op)
            rules.check_wrapping_request(wrapping_algorithm, wrapping_key_spec, self._fail(op))
            key = self._key(op, key_id)
            if key.origin != "EXTERNAL":
                raise self._error(op, "UnsupportedOperationException",
                                  f"{key.arn} origin is {key.origin} which is not valid for this operation.")
            self._not_pending_deletion(op, key)
            rules.check_wrapping_fits(key, wrapping_algorithm, wrapping_key_spec, self._fail(op))
            private = _wrapping_key(wrapping_key_spec)
            public_der = private.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
            token = os.urandom(32) + key.key_id.encode()
            valid_to = self.world.now() + TOKEN_LIFETIME
            self.world.tokens[token] = _Token(key.arn, wrapping_algorithm, wrapping_key_spec, valid_to)
            return ImportParameters(key_id=key.arn, public_key_der=public_der, import_token=token,
                                    valid_to=valid_to)

    def import_key_material(self, key_id: str, import_token: bytes, encrypted_key_material: bytes,
                            valid_to: datetime | None = None, import_type: str | None = None) -> str | None:
        op = "ImportKeyMaterial"
        with self.world.lock:
            self._begin(op)
            now = self.world.now()
            if not encrypted_key_material or len(encrypted_key_material) > 6144:
                raise self._error(op, "ValidationException",
                                  "EncryptedKeyMaterial must have length between 1 and 6144")
            rules.check_valid_to(valid_to, now, self._fail(op))
            key = self._key(op, key_id)
            if key.origin != "EXTERNAL":
                raise self._error(op, "UnsupportedOperationException",
                                  f"{key.arn} origin is {key.origin} which is not valid for this operation.")
            self._not_pending_deletion(op, key)
            symmetric = key.key_spec == "SYMMETRIC_DEFAULT"
            if import_type is not None and (not symmetric or import_type not in materials.IMPORT_TYPES):
                raise self._error(op, "ValidationException", "ImportType is only supported for symmetric "
                                  f"encryption keys, as one of {', '.join(materials.IMPORT_TYPES)}")
            token = rules.spend_token(self.world, key, import_token, now, self._fail(op))  # spent from here on
            material = rules.unwrapped_material(key, token, encrypted_key_material, self._fail(op))
            when = None if valid_to is None else valid_to if valid_to.tzinfo else valid_to.replace(tzinfo=timezone.utc)
            if symmetric:
                return materials.import_symmetric(self.world, key, material, import_type, when, self._fail(op))
            materials.import_asymmetric(self.world, key, material, when, self._fail(op))
            return None

    def rotate_key_on_demand(self, key_id: str) -> None:
        op = "RotateKeyOnDemand"
        with self.world.lock:
            self._begin(op)
            materials.rotate(self.world, self._key(op, key_id), self._fail(op))

    def delete_imported_key_material(self, key_id: str, key_material_id: str | None = None) -> None:
        """As AWS: the material is gone at once, the key goes PendingImport (ARN and aliases stay);
        only the same material can be imported again. A material still waiting for
        RotateKeyOnDemand is dropped from the key altogether (it was never permanently associated)."""
        op = "DeleteImportedKeyMaterial"
        with self.world.lock:
            self._begin(op)
            key = self._key(op, key_id)
            if key.origin != "EXTERNAL":
                raise self._error(op, "UnsupportedOperationException",
                                  f"{key.arn} origin is {key.origin} which is not valid for this operation.")
            self._not_pending_deletion(op, key)
            family = materials.family(self.world, key)
            if key_material_id is not None:
                if key.key_spec != "SYMMETRIC_DEFAULT" or key_material_id not in family:
                    raise self._error(op, "NotFoundException",
                                      f"Key material {key_material_id} is not associated with {key.arn}.")
                if not materials.delete_one(self.world, key, key_material_id):
                    return  # a staged or non-current material: the current one stays
            else:
                for mid, m in family.items():
                    if m["state"] == "CURRENT":
                        key.imported.pop(mid, None)
            key.material = None
            key.valid_to = None
            key.state = "PendingImport"

    def describe_key(self, key_id: str) -> KeyDescription | None:
        op = "DescribeKey"
        with self.world.lock:
            self._begin(op)
            try:
                key = self._key(op, key_id, allow_alias=True)
            except ProviderError as err:
                if err.code == "NotFoundException":
                    return None
                raise
            return KeyDescription(key_id=key.key_id, arn=key.arn, state=key.state,
                                  enabled=key.enabled, key_spec=key.key_spec,
                                  key_usage=key.key_usage, origin=key.origin,
                                  multi_region=key.multi_region, description=key.description,
                                  current_key_material_id=materials.current_id(self.world, key))

    def enable_key(self, key_id: str) -> None:
        self._set_enabled("EnableKey", key_id, "Enabled")

    def disable_key(self, key_id: str) -> None:
        self._set_enabled("DisableKey", key_id, "Disabled")

    def _set_enabled(self, op: str, key_id: str, state: str) -> None:
        with self.world.lock:
            self._begin(op)
            key = self._key(op, key_id)
            self._not_pending_deletion(op, key)
            if key.state == "PendingImport":
                raise self._error(op, "KMSInvalidStateException", f"{key.arn} is pending import.")
            key.state = state

    def schedule_key_deletion(self, key_id: str, pending_window_days: int) -> datetime | None:
        op = "ScheduleKeyDeletion"
        with self.world.lock:
            try:
                self._begin(op)
            except ProviderError as err:  # the same tolerance as awskms, for injected faults
                if err.code == "NotFoundException" or (
                        err.code == "KMSInvalidStateException" and "pending" in str(err).lower()
                        and "deletion" in str(err).lower()):
                    return
                raise
            if not 7 <= int(pending_window_days) <= 30:
                raise self._error(op, "ValidationException",
                                  f"PendingWindowInDays must be between 7 and 30, got {pending_window_days}")
            try:
                key = self._key(op, key_id)
            except ProviderError as err:
                if err.code == "NotFoundException":
                    return  # gone already: not an error for the protocol
                raise
            if key.state in _PENDING_DELETION:
                return  # AWS: KMSInvalidStateException "is pending deletion"; tolerated here
            key.pending_window = int(pending_window_days)
            if key.mr_type == "PRIMARY" and self.world._replicas(key):
                key.state = "PendingReplicaDeletion"
                key.deletion_date = None
            else:
                key.state = "PendingDeletion"
                key.deletion_date = self.world.now() + timedelta(days=int(pending_window_days))
            return key.deletion_date  # as AWS's DeletionDate (None for a primary awaiting replicas)

    def create_alias(self, alias_name: str, key_id: str) -> None:
        op = "CreateAlias"
        with self.world.lock:
            self._begin(op)
            rules.check_alias_name(alias_name, self._fail(op))
            reg = self.world.region(self.region)
            if alias_name in reg.aliases:
                raise self._error(op, "AlreadyExistsException",
                                  f"An alias with the name arn:aws:kms:{self.region}:{ACCOUNT_ID}:"
                                  f"{alias_name} already exists")
            key = self._key(op, key_id)
            self._not_pending_deletion(op, key)
            reg.aliases[alias_name] = key.key_id

    def update_alias(self, alias_name: str, key_id: str) -> None:
        op = "UpdateAlias"
        with self.world.lock:
            self._begin(op)
            rules.check_alias_name(alias_name, self._fail(op))
            reg = self.world.region(self.region)
            if alias_name not in reg.aliases:
                raise self._error(op, "NotFoundException",
                                  f"Alias arn:aws:kms:{self.region}:{ACCOUNT_ID}:{alias_name} is not found.")
            key = self._key(op, key_id)
            self._not_pending_deletion(op, key)
            current = reg.keys.get(reg.aliases[alias_name])
            if current is not None and (_key_kind(current.key_spec) != _key_kind(key.key_spec)
                                        or current.key_usage != key.key_usage):
                raise self._error(op, "ValidationException",
                                  "The current and new KMS key of an alias must be the same type "
                                  "(symmetric, asymmetric or HMAC) with the same key usage.")
            reg.aliases[alias_name] = key.key_id

    def delete_alias(self, alias_name: str) -> None:
        op = "DeleteAlias"
        with self.world.lock:
            try:
                self._begin(op)
                rules.check_alias_name(alias_name, self._fail(op))
            except ProviderError as err:
                if err.code == "NotFoundException":
                    return
                raise
            self.world.region(self.region).aliases.pop(alias_name, None)

    def get_alias_target(self, alias_name: str) -> str | None:
        with self.world.lock:
            self._begin("ListAliases")
            return self.world.region(self.region).aliases.get(alias_name)

    def replicate_key(self, key_id: str, replica_region: str, *, description: str,
                      tags: dict[str, str]) -> str:
        op = "ReplicateKey"
        with self.world.lock:
            self._begin(op, tags=bool(tags))
            if not re.match(r"^([a-z]+-){2,3}\d+$", replica_region or ""):
                raise self._error(op, "ValidationException",
                                  f"Value '{replica_region}' at 'replicaRegion' failed to satisfy constraint")
            key = self._key(op, key_id)
            if not key.multi_region:
                raise self._error(op, "UnsupportedOperationException",
                                  f"{key.arn} is not a multi-Region key.")
            if key.mr_type != "PRIMARY":
                raise self._error(op, "UnsupportedOperationException",
                                  f"{key.arn} is not a multi-Region primary key.")
            if replica_region == self.region:
                raise self._error(op, "ValidationException",
                                  f"The replica region {replica_region} is the primary key's region.")
            if key.state == "Disabled":
                raise self._error(op, "DisabledException", f"{key.arn} is disabled.")
            self._not_pending_deletion(op, key)
            if key.state == "PendingImport":
                raise self._error(op, "KMSInvalidStateException", f"{key.arn} is pending import.")
            rules.check_tags(tags, self._fail(op))
            target = self.world.region(replica_region)
            if key.key_id in target.keys:
                # AWS: AlreadyExistsException. awskms returns the (same) key ID: do the same.
                return key.key_id
            target.keys[key.key_id] = _Key(
                key_id=key.key_id, region=replica_region, key_spec=key.key_spec,
                key_usage=key.key_usage, description=description or "", multi_region=True,
                created=self.world.now(), tags=dict(tags or {}), mr_type="REPLICA",
                primary_region=self.region)
            return key.key_id

    def get_public_key(self, key_id: str) -> bytes:
        op = "GetPublicKey"
        with self.world.lock:
            self._begin(op)
            key = self._key(op, key_id, allow_alias=True)
            if _key_kind(key.key_spec) != "asymmetric":
                raise self._error(op, "UnsupportedOperationException",
                                  f"{key.arn} key usage is not valid for GetPublicKey: it is not an asymmetric key.")
            self._not_pending_deletion(op, key)
            if key.state == "PendingImport" or key.material is None:
                raise self._error(op, "KMSInvalidStateException", f"{key.arn} is pending import.")
            if key.state == "Disabled":
                raise self._error(op, "DisabledException", f"{key.arn} is disabled.")
            private = serialization.load_der_private_key(key.material, password=None,
                                                         unsafe_skip_rsa_key_validation=True)
            return private.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    def list_resource_tags(self, key_id: str) -> dict[str, str]:
        op = "ListResourceTags"
        with self.world.lock:
            self._begin(op)
            return dict(self._key(op, key_id).tags)

    def tag_resource(self, key_id: str, tags: dict[str, str]) -> None:
        op = "TagResource"
        with self.world.lock:
            self._begin(op, tags=True)
            key = self._key(op, key_id)
            self._not_pending_deletion(op, key)
            rules.check_tags(tags, self._fail(op))
            key.tags.update(tags)

    def list_keys(self) -> list[str]:
        with self.world.lock:
            self._begin("ListKeys")
            return list(self.world.region(self.region).keys)

    def list_tags_of_keys(self, key_ids: list[str]) -> TagReading:
        """As ``AwsKmsProvider.list_tags_of_keys``: one ListResourceTags per key (in order, each
        counted and open to ``fail_next``); a key refused with ``NOT_READABLE_CODES`` maps to
        None, any other failure raises."""
        reading = TagReading(tags={}, how="the in-memory twin")
        ids: list[str] = []
        refused_ids: list[str] = []
        for key_id in key_ids:
            self._ids.take()
            try:
                reading.tags[key_id] = self.list_resource_tags(key_id)
            except ProviderError as error:
                if error.code not in NOT_READABLE_CODES:
                    raise
                reading.tags[key_id] = None
                reading.refused += 1
                refused_ids.append(self._ids.last)
            finally:
                reading.requests += 1
                ids.append(self._ids.last)
        self._ids.take()
        reading.request_ids = sample_ids(ids, refused_ids)
        return reading

    def find_tagged(self, wanted: dict[str, str]) -> list[str]:
        """As ``AwsKmsProvider.find_tagged``: one ``GetResources`` over the region's keys; inject
        a refusal with ``fail_next("GetResources", "AccessDeniedException")`` (or
        ``world.tagging_refused``) to take the ListKeys + ListResourceTags path."""
        return self.world.tag_search.run(self, wanted, self._get_resources)

    @property
    def tag_search_note(self) -> str | None:
        return self.world.tag_search.note

    def _get_resources(self, wanted: dict[str, str]) -> list[str]:
        with self.world.lock:
            self._begin("GetResources")
            if self.world.tagging_refused:
                raise self._error("GetResources", "AccessDeniedException",
                                  "not authorized to perform: tag:GetResources")
            return [k.key_id for k in self.world.region(self.region).keys.values()
                    if tagsearch.matches(k.tags, wanted)]

    def in_region(self, region: str) -> "MemoryKms":
        return MemoryKms(region, self.world)

    def __repr__(self) -> str:
        return f"MemoryKms(region={self.region!r})"

