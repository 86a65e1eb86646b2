"""The field schemas of every path: what the engine validates with, what path-help and the shell
completions show. Cheap to import: no handler, no crypto, no AWS."""

from __future__ import annotations

from datetime import datetime

from keymgmt_cli.engine.fields import Field
from keymgmt_cli.engine.keytypes import DEFAULT_KEY_TYPE, KEY_TYPES, PURPOSES
from keymgmt_cli.engine.names import REGION_PATTERN
from keymgmt_cli.errors import InvalidRequest

KEY_FIELDS = {
    "type": Field("type", "choice", "Type of cryptographic key; set on creation only.",
                  default=DEFAULT_KEY_TYPE, allowed=tuple(KEY_TYPES)),
    "replica_regions": Field(
        "replica_regions", "commalist",
        "AWS regions for multi-Region replicas (aes256-gcm96 only); set on creation only.",
        pattern=REGION_PATTERN, pattern_hint="an AWS region such as us-east-1"),
    "min_enabled_version": Field(
        "min_enabled_version", "int",
        "Versions below this are disabled in every KMS the key is distributed to; 0 enables all.",
        default=0, minimum=0),
    "deletion_allowed": Field("deletion_allowed", "bool", "Whether the key may be deleted.", default=False),
    "auto_rotate_period": Field("auto_rotate_period", "duration",
                                "Rotate the key when its latest version is this old (90d, 720h; 0 turns it "
                                "off; at least 1h, as Vault transit). Performed by 'keymgmt due -apply'.",
                                default=0, check=lambda seconds: _check_rotate_period(seconds)),
}


PROVIDERS = ("awskms",)
CREDENTIAL_KEYS = ("access_key", "secret_key", "session_token", "endpoint", "profile", "role_arn",
                   "external_id", "session_name", "duration", "web_identity_token_file")

KMS_FIELDS = {
    "provider": Field("provider", "choice", "The KMS provider type; cannot be changed after creation.",
                      allowed=PROVIDERS, required=True),
    "key_collection": Field("key_collection", "string",
                            "For awskms, the AWS region; cannot be changed after creation.",
                            required=True, pattern=REGION_PATTERN,
                            pattern_hint="an AWS region such as us-west-1"),
    "credentials": Field("credentials", "kvmap",
                         "Credentials as credentials=KEY=VALUE: access_key, secret_key, session_token, "
                         "endpoint; or profile (a profile of the shared AWS files); role_arn (AssumeRole "
                         "from those or the default chain) with external_id, session_name, duration; "
                         "role_arn with web_identity_token_file (CI OIDC). Without them the AWS default "
                         "chain applies (environment, shared credentials file, EC2/ECS role). An update "
                         "merges by key: credentials=KEY= removes one; access_key/secret_key replace "
                         "the session_token, role_arn the other role keys.",
                         allowed=CREDENTIAL_KEYS, secret_keys=("secret_key", "session_token", "external_id")),
}


WRAPPING_ALGORITHMS = ("RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_1", "RSA_AES_KEY_WRAP_SHA_256", "RSA_AES_KEY_WRAP_SHA_1")
WRAPPING_KEY_SPECS = ("RSA_4096", "RSA_3072", "RSA_2048")


def _check_rotate_period(seconds: int) -> None:
    from keymgmt_cli.engine.durations import MIN_ROTATE_PERIOD

    if 0 < seconds < MIN_ROTATE_PERIOD:
        raise InvalidRequest("auto_rotate_period must be 0 (off) or at least 1h, as Vault transit")


def _check_valid_to(value: str) -> None:
    parse_valid_to(value)


def parse_valid_to(value: str) -> datetime:
    """An RFC 3339 time or a duration relative to each import (``90d``), resolved for an import now."""
    from keymgmt_cli.engine.durations import resolve_valid_to

    return resolve_valid_to(value)


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
                      "Expire the imported material (KEY_MATERIAL_EXPIRES) at this RFC 3339 time, or "
                      "this long after each import (90d: rotations and renewals then never reuse a "
                      "date now past); default: never expires.", check=_check_valid_to),
    "pending_window_days": Field("pending_window_days", "int",
                                 "Waiting period of ScheduleKeyDeletion when the key is removed (7-30).",
                                 default=30, minimum=7, maximum=30),
    "rotation_mode": Field("rotation_mode", "choice",
                           "new-key (Vault's): each version gets its own KMS key and rotation moves the alias; "
                           "on-demand (aes256-gcm96 only): one KMS key for all versions, rotated with "
                           "ImportType=NEW_KEY_MATERIAL + RotateKeyOnDemand, so the ARN never changes. "
                           "Set at distribution only.", default="new-key", allowed=("new-key", "on-demand")),
}
REMOVE_FIELDS = {"pending_window_days": DIST_FIELDS["pending_window_days"]}

RENEW_FIELDS = {"valid_to": Field("valid_to", "string",
                                  "The new expiry: a duration after this import (90d) or an RFC 3339 time.",
                                  required=True, check=_check_valid_to)}
