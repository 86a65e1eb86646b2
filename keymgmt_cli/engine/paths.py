"""The route table of a keymgmt mount: Vault's keymgmt API, one row per path."""

from __future__ import annotations

from keymgmt_cli.engine.routing import Operation, Route


# Loaders: each imports one handler module when a route first needs it (reads stay light).
def _keys():
    from keymgmt_cli.engine import keys

    return keys


def _kms():
    from keymgmt_cli.engine import kmsproviders

    return kmsproviders


def _dist():
    from keymgmt_cli.engine import distribution

    return distribution


def _life():
    from keymgmt_cli.engine import lifetime

    return lifetime


def _schemas():
    from keymgmt_cli.engine import schemas

    return schemas


N = r"(?P<name>[^/]+)"
K = r"(?P<key_name>[^/]+)"

ROUTES: list[Route] = [
    Route("key", "List the keys of this mount.",
          {"list": Operation((_keys, "list_keys"), "List key names.", example="keymgmt list keymgmt/key")}),
    Route(f"key/{N}", "Create, update, read or delete a key.", {
        "write": Operation((_keys, "write_key"), "Create the key (type, replica_regions) or update it "
                           "(min_enabled_version, deletion_allowed).", (_schemas, "KEY_FIELDS"),
                           example="keymgmt write keymgmt/key/example-key type=aes256-gcm96"),
        "read": Operation((_keys, "read_key"), "Versions, creation times and public keys (asymmetric types).",
                          example="keymgmt read keymgmt/key/example-key"),
        "delete": Operation((_keys, "delete_key"), "Delete the key; needs deletion_allowed=true and no distribution.",
                            example="keymgmt delete keymgmt/key/example-key"),
    }),
    Route(f"key/{N}/rotate", "Rotate the key: a new version, imported into every KMS it is distributed to.", {
        "write": Operation((_keys, "rotate_key"), "Create a new version and repoint each distribution's alias (on-demand "
                           "distributions: RotateKeyOnDemand in the same key); after a failure, run it again to "
                           "finish the same rotation.",
                           example="keymgmt write -f keymgmt/key/example-key/rotate"),
        "delete": Operation((_keys, "abandon_rotation"), "Abandon an unfinished rotation: schedule deletion of the "
                            "KMS keys it created and drop the new version.",
                            example="keymgmt delete keymgmt/key/example-key/rotate"),
    }),
    Route(f"key/{N}/kms", "List the KMS providers the key is distributed to.", {
        "list": Operation((_keys, "list_key_kms"), "KMS provider names.", example="keymgmt list keymgmt/key/example-key/kms"),
    }),
    Route("kms", "List the KMS providers of this mount.",
          {"list": Operation((_kms, "list_providers"), "KMS provider names.", example="keymgmt list keymgmt/kms")}),
    Route(f"kms/{N}", "Create, update, read or delete a KMS provider.", {
        "write": Operation((_kms, "write_provider"), "Create or update; provider and key_collection are fixed once set.",
                           (_schemas, "KMS_FIELDS"),
                           example="keymgmt write keymgmt/kms/example-kms provider=awskms key_collection=us-west-1 "
                                   "credentials=access_key=AKIA... credentials=secret_key=..."),
        "read": Operation((_kms, "read_provider"), "provider and key_collection (never credentials).",
                          example="keymgmt read keymgmt/kms/example-kms"),
        "delete": Operation((_kms, "delete_provider"), "Delete; refused while keys are distributed to it.",
                            example="keymgmt delete keymgmt/kms/example-kms"),
    }),
    Route(f"kms/{N}/key", "List the keys distributed to the KMS provider.", {
        "list": Operation((_dist, "list_distributions"), "Key names.", example="keymgmt list keymgmt/kms/example-kms/key"),
    }),
    Route(f"kms/{N}/key/{K}", "Distribute a key to the KMS provider, read it there, or remove it.", {
        "write": Operation((_dist, "distribute"), "Import every version into its own KMS key (rotation_mode=on-demand: all "
                           "into one) and create the alias alias/hashicorp/<key_name>-<unix_timestamp>.", (_schemas, "DIST_FIELDS"),
                           example="keymgmt write keymgmt/kms/example-kms/key/example-key purpose=encrypt,decrypt"),
        "read": Operation((_dist, "read_distribution"), "name, purpose, protection, rotation_mode and versions (version "
                          "-> KMS key id; with rotation_mode=on-demand all one key, and key_material_ids).",
                          example="keymgmt read keymgmt/kms/example-kms/key/example-key"),
        "delete": Operation((_dist, "remove"), "Delete the alias and schedule deletion of every version's KMS key "
                            "(replicas first); the key stays in keymgmt.", (_schemas, "REMOVE_FIELDS"),
                            example="keymgmt delete keymgmt/kms/example-kms/key/example-key"),
    }),
    Route(f"kms/{N}/key/{K}/renew", "Renew expiring (or expired) imported material with a new valid_to.", {
        "write": Operation((_life, "renew"), "Re-import the same material with the new expiry into every version key, "
                           "region and replica; an expired key comes back Enabled with the same ARN.",
                           (_schemas, "RENEW_FIELDS"),
                           example="keymgmt write keymgmt/kms/example-kms/key/example-key/renew valid_to=90d"),
    }),
    Route(f"kms/{N}/key/{K}/suspend", "The kill switch: make the key unusable in AWS at once.", {
        "write": Operation((_life, "suspend"), "DeleteImportedKeyMaterial for every version key in every region "
                           "and replica; ARNs and aliases stay. Undo with resume.",
                           example="keymgmt write -f keymgmt/kms/example-kms/key/example-key/suspend"),
    }),
    Route(f"kms/{N}/key/{K}/resume", "Undo suspend.", {
        "write": Operation((_life, "resume"), "Re-import the same material and restore what min_enabled_version "
                           "asks for.", example="keymgmt write -f keymgmt/kms/example-kms/key/example-key/resume"),
    }),
    Route(f"kms/{N}/key/{K}/replicate", "Replicate a multi-Region key to its replica_regions.", {
        "write": Operation((_dist, "replicate"), "ReplicateKey per region and import the same material into each replica.",
                           example="keymgmt write -f keymgmt/kms/example-kms/key/example-key/replicate"),
    }),
]
