"""keymgmt: Vault's keymgmt CLI grammar over a sealed local state, distributing keys to AWS KMS."""

__version__ = "0.1.0"
