"""The check of the wrapping public key GetParametersForImport returns, before anything is wrapped
under it: RSA of the size asked for, with exponent 65537, or nothing is imported.

Apart from ``awskms.py`` because it is a check of AWS's answer, not a call: it loads cryptography
(only once GetParametersForImport has answered) and reads ``transfer``'s table of wrapping key
sizes, which the adapter otherwise never needs.
"""

from __future__ import annotations

from ..errors import ProviderError


def check_wrapping_key(public_key_der: bytes, wrapping_key_spec: str, region: str) -> None:
    """The wrapping public key from GetParametersForImport must be an RSA key of the size
    ``wrapping_key_spec`` asks for, with exponent 65537: anything else may be a key planted by
    someone on the path, and the material wrapped under it would be theirs. ProviderError
    (one line, before any import) otherwise."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    from ..transfer import WRAPPING_KEY_SPECS

    def refuse(why: str) -> ProviderError:
        return ProviderError(
            f"AWS KMS GetParametersForImport in {region} returned a wrapping key that is not the "
            f"one asked for ({why}); nothing was imported",
            code="UnexpectedWrappingKey", service="kms", operation="GetParametersForImport",
            region=region, hint="check the endpoint: something between keymgmt and AWS KMS may "
                                "be replacing the wrapping key")

    bits = WRAPPING_KEY_SPECS.get(wrapping_key_spec)
    if bits is None:
        raise refuse(f"unknown wrapping key spec {wrapping_key_spec!r}")
    try:
        key = load_der_public_key(public_key_der)
    except (ValueError, TypeError):
        raise refuse("not a DER public key") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise refuse(f"{type(key).__name__.lstrip('_')}, expected RSA")
    if key.key_size != bits:
        raise refuse(f"RSA-{key.key_size}, expected {wrapping_key_spec}")
    if key.public_numbers().e != 65537:
        raise refuse("its public exponent is not 65537")
