"""The field schemas of every path: what the engine validates with, what path-help and the shell
completions show. Cheap to import: no handler, no crypto, no AWS."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from keymgmt_cli.engine.fields import Field
from keymgmt_cli.engine.keytypes import DEFAULT_KEY_TYPE, KEY_TYPES, PURPOSES
from keymgmt_cli.engine.names import REGION_RE
from keymgmt_cli.errors import InvalidRequest

KEY_FIELDS = {
    "type": Field("type", "choice", "Type of cryptographic key; set on creation only.",
                  default=DEFAULT_KEY_TYPE, allowed=tuple(KEY_TYPES)),
    "replica_regions": Field(
        "replica_regions", "commalist",
        "AWS regions for multi-Region replicas (aes256-gcm96 only); set on creation only.",
        pattern=REGION_RE.pattern, pattern_hint="an AWS region such as us-east-1"),
    "min_enabled_version": Field(
        "min_enabled_version", "int",
        "Versions below this are disabled in every KMS the key is distributed to; 0 enables all.",
        default=0, minimum=0),
    "deletion_allowed": Field("deletion_allowed", "bool", "Whether the key may be deleted.", default=False),
}


PROVIDERS = ("awskms",)
CREDENTIAL_KEYS = ("access_key", "secret_key", "session_token", "endpoint")

KMS_FIELDS = {
    "provider": Field("provider", "choice", "The KMS provider type; cannot be changed after creation.",
                      allowed=PROVIDERS, required=True),
    "key_collection": Field("key_collection", "string",
                            "For awskms, the AWS region; cannot be changed after creation.",
                            required=True, pattern=REGION_RE.pattern,
                            pattern_hint="an AWS region such as us-west-1"),
    "credentials": Field("credentials", "kvmap",
                         "Credentials as credentials=KEY=VALUE: access_key, secret_key, session_token, "
                         "endpoint. Without them the AWS default chain applies (environment, shared "
                         "credentials file, EC2/ECS role).",
                         allowed=CREDENTIAL_KEYS, secret_keys=("secret_key", "session_token")),
}


WRAPPING_ALGORITHMS = ("RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_1", "RSA_AES_KEY_WRAP_SHA_256", "RSA_AES_KEY_WRAP_SHA_1")
WRAPPING_KEY_SPECS = ("RSA_4096", "RSA_3072", "RSA_2048")


def _check_valid_to(value: str) -> None:
    parse_valid_to(value)


def parse_valid_to(value: str) -> datetime:
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest("valid_to is not an RFC 3339 time such as 2027-06-30T00:00:00Z") from None
    if when.tzinfo is None:
        raise InvalidRequest("valid_to needs a time zone, as 2027-06-30T00:00:00Z")
    now = datetime.now(timezone.utc)
    if when <= now or when > now + timedelta(days=365):
        raise InvalidRequest("valid_to must be in the future and at most 365 days away (AWS's limit)")
    return when


DIST_FIELDS = {
    "purpose": Field("purpose", "commalist",
                     "Purposes of the key in the KMS, comma-separated or repeated: encrypt,decrypt "
                     "(aes256-gcm96, rsa-*) or sign,verify (rsa-*, ecdsa-*).",
                     allowed=PURPOSES, required=True),
    "protection": Field("protection", "choice",
                        "Where operations happen; AWS KMS keeps all key material in its HSMs, so "
                        "'software' is recorded only.", default="hsm", allowed=("hsm", "software")),
    "wrapping_algorithm": Field("wrapping_algorithm", "choice",
                                "AWS import wrapping algorithm (default from the key type: RSAES_OAEP_SHA_256 "
                                "for aes256-gcm96, RSA_AES_KEY_WRAP_SHA_256 for RSA and ECC keys).",
                                allowed=WRAPPING_ALGORITHMS),
    "wrapping_key_spec": Field("wrapping_key_spec", "choice", "AWS import wrapping key.", default="RSA_4096",
                               allowed=WRAPPING_KEY_SPECS),
    "valid_to": Field("valid_to", "string",
                      "Expire the imported material at this RFC 3339 time (KEY_MATERIAL_EXPIRES); "
                      "default: never expires.", check=_check_valid_to),
    "pending_window_days": Field("pending_window_days", "int",
                                 "Waiting period of ScheduleKeyDeletion when the key is removed (7-30).",
                                 default=30, minimum=7, maximum=30),
}
REMOVE_FIELDS = {"pending_window_days": DIST_FIELDS["pending_window_days"]}
