"""keymgmt_cli.transfer (AWS KMS import wrapping) and keymgmt_cli.keymaterial (the material it
wraps), by round trip and against the openssl CLI.

The expected tables below are written out from the AWS KMS Developer Guide (see the reference
notes, sections 2.2-2.4), not derived from the module, so a wrong table in the module fails here.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from keymgmt_cli import keymaterial, transfer
from keymgmt_cli.errors import InvalidRequest
from keymgmt_cli.transfer import TransferError

OAEP = ("RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_1")
RSA_AES = ("RSA_AES_KEY_WRAP_SHA_256", "RSA_AES_KEY_WRAP_SHA_1")
ALL_ALGORITHMS = RSA_AES + OAEP

# AWS-DG GetParametersForImport table, algorithms in AWS's preference order.
EXPECTED_ALLOWED = {
    "SYMMETRIC_DEFAULT": OAEP,
    "RSA_2048": RSA_AES,
    "RSA_3072": RSA_AES,
    "RSA_4096": RSA_AES,
    "ECC_NIST_P256": RSA_AES + OAEP,
    "ECC_NIST_P384": RSA_AES + OAEP,
    "ECC_NIST_P521": RSA_AES + OAEP,
}
WRAPPING_SIZES = {"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}
CURVES = {"ECC_NIST_P256": "secp256r1", "ECC_NIST_P384": "secp384r1",
          "ECC_NIST_P521": "secp521r1"}


def _aws_refuses(key_spec: str, algorithm: str, wrapping_spec: str) -> bool:
    """AWS-DG: "ECC_NIST_P521 + RSA_2048 + RSAES_OAEP_SHA_*" is not supported."""
    return key_spec == "ECC_NIST_P521" and wrapping_spec == "RSA_2048" and algorithm in OAEP


ALLOWED_COMBOS = [
    (key_spec, algorithm, wrapping_spec)
    for key_spec, algorithms in EXPECTED_ALLOWED.items()
    for algorithm in algorithms
    for wrapping_spec in WRAPPING_SIZES
    if not _aws_refuses(key_spec, algorithm, wrapping_spec)
]
COMBO_IDS = ["-".join(c) for c in ALLOWED_COMBOS]


@pytest.fixture(scope="module")
def wrapping_keys() -> dict[str, rsa.RSAPrivateKey]:
    """One RSA wrapping key pair per WrappingKeySpec, as GetParametersForImport would hold."""
    return {spec: rsa.generate_private_key(public_exponent=65537, key_size=bits)
            for spec, bits in WRAPPING_SIZES.items()}


@pytest.fixture(scope="module")
def public_ders(wrapping_keys) -> dict[str, bytes]:
    """What GetParametersForImport returns as PublicKey: DER SubjectPublicKeyInfo."""
    return {spec: key.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
            for spec, key in wrapping_keys.items()}


@pytest.fixture(scope="module")
def materials() -> dict[str, bytes]:
    return {spec: keymaterial.generate_material(spec) for spec in EXPECTED_ALLOWED}


@pytest.fixture(scope="module")
def key_files(tmp_path_factory, wrapping_keys, public_ders):
    """priv.pem / pub.der per wrapping key spec, for the openssl command line."""
    base = tmp_path_factory.mktemp("wrapping")
    files = {}
    for spec, key in wrapping_keys.items():
        priv = base / f"{spec}.priv.pem"
        priv.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        pub = base / f"{spec}.pub.der"
        pub.write_bytes(public_ders[spec])
        files[spec] = (priv, pub)
    return files


needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl CLI")


def _openssl(*args: str, data: bytes) -> bytes:
    result = subprocess.run(["openssl", *args], input=data, capture_output=True, timeout=30)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout


def _md(algorithm: str) -> str:
    return "sha256" if algorithm.endswith("SHA_256") else "sha1"


def _oaep_opts(algorithm: str) -> list[str]:
    md = _md(algorithm)
    return ["-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", f"rsa_oaep_md:{md}",
            "-pkeyopt", f"rsa_mgf1_md:{md}"]


def _kwp_len(n: int) -> int:
    return 8 * ((n + 7) // 8) + 8


def _assert_clean_message(err: Exception, *secrets: bytes) -> None:
    message = str(err)
    assert "\n" not in message
    for secret in secrets:
        if len(secret) >= 8:
            assert secret.hex()[:16] not in message.lower()
            assert repr(secret[:8])[2:-1] not in message


# --- tables -------------------------------------------------------------------------------------

def test_tables_match_aws():
    assert transfer.WRAPPING_ALGORITHMS == ("RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_1",
                                            "RSA_AES_KEY_WRAP_SHA_256", "RSA_AES_KEY_WRAP_SHA_1")
    assert transfer.WRAPPING_KEY_SPECS == WRAPPING_SIZES
    assert set(keymaterial.KEY_SPECS) == set(EXPECTED_ALLOWED)
    assert issubclass(TransferError, InvalidRequest)


@pytest.mark.parametrize("key_spec", list(EXPECTED_ALLOWED))
def test_allowed_algorithms_in_aws_preference_order(key_spec):
    assert transfer.allowed_algorithms(key_spec) == EXPECTED_ALLOWED[key_spec]


@pytest.mark.parametrize("key_spec,expected", [
    ("SYMMETRIC_DEFAULT", ("RSAES_OAEP_SHA_256", "RSA_4096")),
    ("RSA_2048", ("RSA_AES_KEY_WRAP_SHA_256", "RSA_4096")),
    ("RSA_4096", ("RSA_AES_KEY_WRAP_SHA_256", "RSA_4096")),
    ("ECC_NIST_P256", ("RSA_AES_KEY_WRAP_SHA_256", "RSA_4096")),
    ("ECC_NIST_P521", ("RSA_AES_KEY_WRAP_SHA_256", "RSA_4096")),
])
def test_default_wrapping(key_spec, expected):
    assert transfer.default_wrapping(key_spec) == expected
    transfer.check_wrapping(key_spec, *expected)


@pytest.mark.parametrize("key_spec", ["HMAC_256", "SM2", "symmetric_default", ""])
def test_unknown_key_spec_lists_supported(key_spec):
    for call in (lambda: transfer.allowed_algorithms(key_spec),
                 lambda: transfer.default_wrapping(key_spec),
                 lambda: keymaterial.check_material(key_spec, b"\0" * 32)):
        with pytest.raises(TransferError, match="allowed: SYMMETRIC_DEFAULT, RSA_2048") as info:
            call()
        assert "ECC_NIST_P521" in str(info.value)


# --- check_wrapping -----------------------------------------------------------------------------

@pytest.mark.parametrize("key_spec,algorithm,allowed", [
    ("SYMMETRIC_DEFAULT", "RSAES_PKCS1_V1_5", "RSAES_OAEP_SHA_256, RSAES_OAEP_SHA_1"),
    ("SYMMETRIC_DEFAULT", "SM2PKE", "RSAES_OAEP_SHA_256, RSAES_OAEP_SHA_1"),
    ("SYMMETRIC_DEFAULT", "rsaes_oaep_sha_256", "RSAES_OAEP_SHA_256, RSAES_OAEP_SHA_1"),
    ("SYMMETRIC_DEFAULT", "RSA_AES_KEY_WRAP_SHA_256", "RSAES_OAEP_SHA_256, RSAES_OAEP_SHA_1"),
    ("RSA_3072", "RSAES_OAEP_SHA_256", "RSA_AES_KEY_WRAP_SHA_256, RSA_AES_KEY_WRAP_SHA_1"),
    ("RSA_2048", "bogus", "RSA_AES_KEY_WRAP_SHA_256, RSA_AES_KEY_WRAP_SHA_1"),
    ("ECC_NIST_P384", "RSAES_PKCS1_V1_5",
     "RSA_AES_KEY_WRAP_SHA_256, RSA_AES_KEY_WRAP_SHA_1, RSAES_OAEP_SHA_256, RSAES_OAEP_SHA_1"),
])
def test_check_wrapping_refuses_algorithm_listing_allowed(key_spec, algorithm, allowed):
    with pytest.raises(TransferError) as info:
        transfer.check_wrapping(key_spec, algorithm, "RSA_4096")
    message = str(info.value)
    assert message.endswith(f"allowed: {allowed}")
    assert repr(algorithm) in message and key_spec in message


@pytest.mark.parametrize("wrapping_spec", ["RSA_1024", "SM2", "rsa_4096", "4096"])
def test_check_wrapping_refuses_wrapping_key_spec(wrapping_spec):
    with pytest.raises(TransferError, match="allowed: RSA_2048, RSA_3072, RSA_4096$"):
        transfer.check_wrapping("SYMMETRIC_DEFAULT", "RSAES_OAEP_SHA_256", wrapping_spec)


@pytest.mark.parametrize("algorithm", OAEP)
@pytest.mark.parametrize("material_len", [None, 100, 241])
def test_p521_with_rsa_2048_and_oaep_is_refused(algorithm, material_len):
    with pytest.raises(TransferError,
                       match="use a larger wrapping key or RSA_AES_KEY_WRAP_SHA_256"):
        transfer.check_wrapping("ECC_NIST_P521", algorithm, "RSA_2048", material_len)


@pytest.mark.parametrize("key_spec,algorithm,wrapping_spec", ALLOWED_COMBOS, ids=COMBO_IDS)
def test_check_wrapping_accepts_every_aws_combination(materials, key_spec, algorithm,
                                                      wrapping_spec):
    transfer.check_wrapping(key_spec, algorithm, wrapping_spec)
    transfer.check_wrapping(key_spec, algorithm, wrapping_spec, len(materials[key_spec]))


# Capacities from RFC 8017 7.1.1 (k - 2*hLen - 2), as tabulated in the reference notes 2.3.
@pytest.mark.parametrize("algorithm,wrapping_spec,capacity", [
    ("RSAES_OAEP_SHA_256", "RSA_2048", 190),
    ("RSAES_OAEP_SHA_1", "RSA_2048", 214),
    ("RSAES_OAEP_SHA_256", "RSA_3072", 318),
    ("RSAES_OAEP_SHA_1", "RSA_3072", 342),
    ("RSAES_OAEP_SHA_256", "RSA_4096", 446),
    ("RSAES_OAEP_SHA_1", "RSA_4096", 470),
])
def test_oaep_capacity_boundary(algorithm, wrapping_spec, capacity):
    transfer.check_wrapping("ECC_NIST_P384", algorithm, wrapping_spec, capacity)
    with pytest.raises(TransferError, match=f"at most {capacity} bytes"):
        transfer.check_wrapping("ECC_NIST_P384", algorithm, wrapping_spec, capacity + 1)


def test_encrypted_blob_limit_6144():
    # 512 bytes of RSA-4096 + RFC 5649 output of 5624 bytes (5616 padded + 8) = 6136
    transfer.check_wrapping("RSA_4096", "RSA_AES_KEY_WRAP_SHA_256", "RSA_4096", 5616)
    with pytest.raises(TransferError, match="limit of 6144"):
        transfer.check_wrapping("RSA_4096", "RSA_AES_KEY_WRAP_SHA_256", "RSA_4096", 5640)
    with pytest.raises(TransferError, match="empty"):
        transfer.check_wrapping("RSA_4096", "RSA_AES_KEY_WRAP_SHA_256", "RSA_4096", 0)


# --- check_material -----------------------------------------------------------------------------

def _der(key, fmt=serialization.PrivateFormat.PKCS8, encoding=serialization.Encoding.DER,
         encryption=None) -> bytes:
    return key.private_bytes(encoding, fmt, encryption or serialization.NoEncryption())


def _load(material: bytes):
    return serialization.load_der_private_key(material, password=None)


@pytest.mark.parametrize("key_spec", list(EXPECTED_ALLOWED))
def test_generated_material_is_what_aws_imports(materials, key_spec):
    material = materials[key_spec]
    keymaterial.check_material(key_spec, material)
    if key_spec == "SYMMETRIC_DEFAULT":
        assert len(material) == 32
        assert keymaterial.generate_material(key_spec) != material
        return
    key = _load(material)
    assert _der(key) == material  # already canonical unencrypted PKCS#8 DER
    if key_spec.startswith("RSA_"):
        assert isinstance(key, rsa.RSAPrivateKey)
        assert key.key_size == WRAPPING_SIZES[key_spec]
        assert key.public_key().public_numbers().e == 65537
    else:
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        assert key.curve.name == CURVES[key_spec]


def _inconsistent_rsa(material: bytes) -> bytes:
    """Well-formed PKCS#8 whose private exponent does not match its modulus."""
    numbers = _load(material).private_numbers()
    broken = rsa.RSAPrivateNumbers(numbers.p, numbers.q, numbers.d ^ 2, numbers.dmp1,
                                   numbers.dmq1, numbers.iqmp, numbers.public_numbers)
    return _der(broken.private_key(unsafe_skip_rsa_key_validation=True))


BAD_MATERIAL = [
    # (id, key_spec, build(materials) -> bytes, expected message fragment)
    ("sym-31", "SYMMETRIC_DEFAULT", lambda m: m["SYMMETRIC_DEFAULT"][:31], "got 31"),
    ("sym-33", "SYMMETRIC_DEFAULT", lambda m: m["SYMMETRIC_DEFAULT"] + b"\0", "got 33"),
    ("sym-empty", "SYMMETRIC_DEFAULT", lambda m: b"", "got 0"),
    ("sym-hex", "SYMMETRIC_DEFAULT", lambda m: m["SYMMETRIC_DEFAULT"].hex().encode(), "got 64"),
    ("sym-str", "SYMMETRIC_DEFAULT", lambda m: "x" * 32, "got str"),
    ("rsa-pkcs1-der", "RSA_2048",
     lambda m: _der(_load(m["RSA_2048"]), serialization.PrivateFormat.TraditionalOpenSSL),
     "PKCS#1"),
    ("rsa-pem-pkcs8", "RSA_2048",
     lambda m: _der(_load(m["RSA_2048"]), encoding=serialization.Encoding.PEM), "PEM"),
    ("rsa-encrypted-pkcs8", "RSA_2048",
     lambda m: _der(_load(m["RSA_2048"]),
                    encryption=serialization.BestAvailableEncryption(b"pw")), "encrypted"),
    ("rsa-wrong-size", "RSA_2048", lambda m: m["RSA_3072"], "got a 3072-bit modulus"),
    ("rsa-4096-as-3072", "RSA_3072", lambda m: m["RSA_4096"], "got a 4096-bit modulus"),
    ("rsa-given-ec", "RSA_4096", lambda m: m["ECC_NIST_P256"], "got a EC key"),
    ("rsa-public-key", "RSA_2048",
     lambda m: _load(m["RSA_2048"]).public_key().public_bytes(
         serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
     "an unencrypted PKCS#8 DER RSA private key with a 2048-bit modulus"),
    ("rsa-trailing-bytes", "RSA_2048", lambda m: m["RSA_2048"] + b"\0\0", "trailing"),
    ("rsa-truncated", "RSA_2048", lambda m: m["RSA_2048"][:-1], "not DER"),
    ("rsa-inconsistent", "RSA_2048", lambda m: _inconsistent_rsa(m["RSA_2048"]),
     "inconsistent"),
    ("rsa-symmetric", "RSA_2048", lambda m: m["SYMMETRIC_DEFAULT"], "RSA private key"),
    ("ec-wrong-curve", "ECC_NIST_P256", lambda m: m["ECC_NIST_P384"], "got curve secp384r1"),
    ("ec-wrong-curve-521", "ECC_NIST_P384", lambda m: m["ECC_NIST_P521"],
     "on curve secp384r1; got curve secp521r1"),
    ("ec-secp256k1", "ECC_NIST_P256",
     lambda m: _der(ec.generate_private_key(ec.SECP256K1())), "got curve secp256k1"),
    ("ec-sec1-der", "ECC_NIST_P256",
     lambda m: _der(_load(m["ECC_NIST_P256"]), serialization.PrivateFormat.TraditionalOpenSSL),
     "SEC1"),
    ("ec-given-rsa", "ECC_NIST_P521", lambda m: m["RSA_2048"], "got a RSA key"),
    ("ec-given-ed25519", "ECC_NIST_P256",
     lambda m: _der(ed25519.Ed25519PrivateKey.generate()), "EC private key on curve secp256r1"),
]


@pytest.mark.parametrize("key_spec,build,fragment", [b[1:] for b in BAD_MATERIAL],
                         ids=[b[0] for b in BAD_MATERIAL])
def test_check_material_refuses(materials, key_spec, build, fragment):
    material = build(materials)
    with pytest.raises(TransferError) as info:
        keymaterial.check_material(key_spec, material)
    message = str(info.value)
    assert fragment in message
    assert message.startswith(key_spec)
    if isinstance(material, bytes):
        _assert_clean_message(info.value, material)
    if key_spec != "SYMMETRIC_DEFAULT" and "inconsistent" not in fragment:
        # also refused when asking for the public key (which skips only the consistency check)
        with pytest.raises(TransferError):
            keymaterial.public_key_pem(key_spec, material)


# --- public_key_pem -----------------------------------------------------------------------------

def test_public_key_pem_none_for_symmetric(materials):
    assert keymaterial.public_key_pem("SYMMETRIC_DEFAULT", materials["SYMMETRIC_DEFAULT"]) is None
    with pytest.raises(TransferError):
        keymaterial.public_key_pem("SYMMETRIC_DEFAULT", b"short")


@needs_openssl
@pytest.mark.parametrize("key_spec", [s for s in EXPECTED_ALLOWED if s != "SYMMETRIC_DEFAULT"])
def test_public_key_pem_matches_openssl(materials, key_spec):
    pem = keymaterial.public_key_pem(key_spec, materials[key_spec])
    assert pem.startswith("-----BEGIN PUBLIC KEY-----\n")
    expected = _openssl("pkey", "-inform", "DER", "-pubout", data=materials[key_spec])
    assert pem == expected.decode("ascii")


# --- round trips --------------------------------------------------------------------------------

@pytest.mark.parametrize("key_spec,algorithm,wrapping_spec", ALLOWED_COMBOS, ids=COMBO_IDS)
def test_round_trip(materials, wrapping_keys, public_ders, key_spec, algorithm, wrapping_spec):
    material = materials[key_spec]
    transfer.check_wrapping(key_spec, algorithm, wrapping_spec, len(material))
    blob = transfer.wrap_key_material(material, public_ders[wrapping_spec], algorithm)
    k = WRAPPING_SIZES[wrapping_spec] // 8
    expected_len = k if algorithm in OAEP else k + _kwp_len(len(material))
    assert len(blob) == expected_len
    assert material not in blob
    assert transfer.unwrap_key_material(blob, wrapping_keys[wrapping_spec], algorithm) == material


@needs_openssl
@pytest.mark.parametrize("key_spec,algorithm,wrapping_spec", ALLOWED_COMBOS, ids=COMBO_IDS)
def test_openssl_unwraps_what_we_wrap(materials, public_ders, key_files, key_spec, algorithm,
                                      wrapping_spec):
    """The independent check: openssl, with the options AWS documents, recovers the material."""
    material = materials[key_spec]
    priv_pem, _ = key_files[wrapping_spec]
    blob = transfer.wrap_key_material(material, public_ders[wrapping_spec], algorithm)
    decrypt = ["pkeyutl", "-decrypt", "-inkey", str(priv_pem), *_oaep_opts(algorithm)]
    if algorithm in OAEP:
        assert _openssl(*decrypt, data=blob) == material
        return
    k = WRAPPING_SIZES[wrapping_spec] // 8  # RSA part first, exactly k bytes
    aes_key = _openssl(*decrypt, data=blob[:k])
    assert len(aes_key) == 32
    unwrapped = _openssl("enc", "-d", "-id-aes256-wrap-pad", "-K", aes_key.hex(),
                         "-iv", "A65959A6", data=blob[k:])
    assert unwrapped == material


@needs_openssl
@pytest.mark.parametrize("wrapping_spec", list(WRAPPING_SIZES))
@pytest.mark.parametrize("algorithm", ALL_ALGORITHMS)
def test_we_unwrap_what_openssl_wraps_per_aws_docs(materials, wrapping_keys, key_files,
                                                   algorithm, wrapping_spec):
    """The other direction: AWS-DG "Step 3" openssl commands build EncryptedKeyMaterial."""
    material = materials["SYMMETRIC_DEFAULT" if algorithm in OAEP else "ECC_NIST_P384"]
    _, pub_der = key_files[wrapping_spec]
    encrypt = ["pkeyutl", "-encrypt", "-inkey", str(pub_der), "-keyform", "DER", "-pubin",
               *_oaep_opts(algorithm)]
    if algorithm in OAEP:
        blob = _openssl(*encrypt, data=material)
    else:
        aes_key = _openssl("rand", "32", data=b"")
        wrapped = _openssl("enc", "-id-aes256-wrap-pad", "-K", aes_key.hex(), "-iv", "A65959A6",
                           data=material)
        blob = _openssl(*encrypt, data=aes_key) + wrapped
    assert transfer.unwrap_key_material(blob, wrapping_keys[wrapping_spec], algorithm) == material


@pytest.mark.parametrize("algorithm", RSA_AES)
def test_each_wrap_uses_a_fresh_aes_key(materials, wrapping_keys, public_ders, algorithm):
    material = materials["RSA_2048"]
    first = transfer.wrap_key_material(material, public_ders["RSA_2048"], algorithm)
    second = transfer.wrap_key_material(material, public_ders["RSA_2048"], algorithm)
    assert first[:256] != second[:256]
    assert first[256:] != second[256:]  # different K, so the RFC 5649 part differs too
    key = wrapping_keys["RSA_2048"]
    assert transfer.unwrap_key_material(first, key, algorithm) == material
    assert transfer.unwrap_key_material(second, key, algorithm) == material


@pytest.mark.parametrize("length", [1, 7, 8, 9, 15, 16, 17, 500])
def test_rsa_aes_wraps_any_length(wrapping_keys, public_ders, length):
    """RFC 5649 pads to 8 bytes; lengths around the block size survive the round trip."""
    material = bytes(range(256)) * 2
    material = material[:length]
    blob = transfer.wrap_key_material(material, public_ders["RSA_2048"],
                                      "RSA_AES_KEY_WRAP_SHA_256")
    assert len(blob) == 256 + _kwp_len(length)
    assert transfer.unwrap_key_material(blob, wrapping_keys["RSA_2048"],
                                        "RSA_AES_KEY_WRAP_SHA_256") == material


# --- wrap refusals ------------------------------------------------------------------------------

@pytest.mark.parametrize("algorithm", OAEP)
def test_wrap_refuses_p521_with_rsa_2048_oaep(materials, public_ders, algorithm):
    material = materials["ECC_NIST_P521"]
    with pytest.raises(TransferError, match="does not fit") as info:
        transfer.wrap_key_material(material, public_ders["RSA_2048"], algorithm)
    _assert_clean_message(info.value, material)


def test_wrap_refuses_unknown_algorithm(materials, public_ders):
    with pytest.raises(TransferError, match="allowed: RSAES_OAEP_SHA_256, RSAES_OAEP_SHA_1, "
                                            "RSA_AES_KEY_WRAP_SHA_256, RSA_AES_KEY_WRAP_SHA_1"):
        transfer.wrap_key_material(materials["SYMMETRIC_DEFAULT"], public_ders["RSA_2048"],
                                   "RSAES_PKCS1_V1_5")


def _spki(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize("build,fragment", [
    (lambda d: _spki(ec.generate_private_key(ec.SECP256R1())), "not an RSA key"),
    (lambda d: _spki(ed25519.Ed25519PrivateKey.generate()), "not an RSA key"),
    (lambda d: d[:-1], "not a DER SubjectPublicKeyInfo"),
    (lambda d: b"garbage", "not a DER SubjectPublicKeyInfo"),
    (lambda d: serialization.load_der_public_key(d).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
     "not a DER SubjectPublicKeyInfo"),
    (lambda d: serialization.load_der_public_key(d).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.PKCS1),
     "not a DER SubjectPublicKeyInfo"),
    (lambda d: _spki(rsa.generate_private_key(public_exponent=65537, key_size=1024)),
     "RSA-1024"),
    (lambda d: d.hex(), "must be DER bytes"),
    (lambda d: d + b"\0", "not a DER SubjectPublicKeyInfo"),
], ids=["ec", "ed25519", "truncated", "garbage", "pem", "pkcs1-public", "rsa-1024", "str",
        "trailing"])
def test_wrap_refuses_bad_wrapping_public_key(materials, public_ders, build, fragment):
    bad = build(public_ders["RSA_2048"])
    for algorithm in ("RSAES_OAEP_SHA_256", "RSA_AES_KEY_WRAP_SHA_256"):
        with pytest.raises(TransferError, match=fragment):
            transfer.wrap_key_material(materials["SYMMETRIC_DEFAULT"], bad, algorithm)


def test_wrap_refuses_empty_material(public_ders):
    with pytest.raises(TransferError, match="non-empty"):
        transfer.wrap_key_material(b"", public_ders["RSA_2048"], "RSA_AES_KEY_WRAP_SHA_256")


# --- unwrap refusals ----------------------------------------------------------------------------

def _flip(blob: bytes, index: int) -> bytes:
    return blob[:index] + bytes([blob[index] ^ 0x01]) + blob[index + 1:]


@pytest.mark.parametrize("algorithm,tamper,fragment", [
    ("RSAES_OAEP_SHA_256", lambda b: _flip(b, 10), "could not be unwrapped"),
    ("RSAES_OAEP_SHA_1", lambda b: _flip(b, 255), "could not be unwrapped"),
    ("RSAES_OAEP_SHA_256", lambda b: b[:-1], "expected 256 bytes"),
    ("RSAES_OAEP_SHA_256", lambda b: b + b"\0", "expected 256 bytes"),
    ("RSA_AES_KEY_WRAP_SHA_256", lambda b: _flip(b, 0), "RSA-OAEP part"),
    ("RSA_AES_KEY_WRAP_SHA_1", lambda b: _flip(b, 100), "RSA-OAEP part"),
    ("RSA_AES_KEY_WRAP_SHA_256", lambda b: _flip(b, 256), "AES key wrap part"),
    ("RSA_AES_KEY_WRAP_SHA_256", lambda b: _flip(b, len(b) - 1), "AES key wrap part"),
    ("RSA_AES_KEY_WRAP_SHA_1", lambda b: b[:-8], "AES key wrap part"),
    ("RSA_AES_KEY_WRAP_SHA_256", lambda b: b[:-1], "is not 256 bytes of RSA-OAEP"),
    ("RSA_AES_KEY_WRAP_SHA_256", lambda b: b[:256], "is not 256 bytes of RSA-OAEP"),
    ("RSA_AES_KEY_WRAP_SHA_256", lambda b: b[256:] + b[:256], "RSA-OAEP part"),
])
def test_tampered_ciphertext_fails_to_unwrap(materials, wrapping_keys, public_ders, algorithm,
                                             tamper, fragment):
    material = materials["ECC_NIST_P256" if algorithm in RSA_AES else "SYMMETRIC_DEFAULT"]
    blob = transfer.wrap_key_material(material, public_ders["RSA_2048"], algorithm)
    key = wrapping_keys["RSA_2048"]
    assert transfer.unwrap_key_material(blob, key, algorithm) == material  # untampered works
    with pytest.raises(TransferError, match=fragment) as info:
        transfer.unwrap_key_material(tamper(blob), key, algorithm)
    _assert_clean_message(info.value, material)


@pytest.mark.parametrize("wrapped_with,unwrapped_with", [
    ("RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_1"),
    ("RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"),
    ("RSA_AES_KEY_WRAP_SHA_256", "RSA_AES_KEY_WRAP_SHA_1"),
    ("RSA_AES_KEY_WRAP_SHA_1", "RSA_AES_KEY_WRAP_SHA_256"),
    ("RSA_AES_KEY_WRAP_SHA_256", "RSAES_OAEP_SHA_256"),
])
def test_unwrap_with_other_algorithm_fails(materials, wrapping_keys, public_ders, wrapped_with,
                                           unwrapped_with):
    blob = transfer.wrap_key_material(materials["ECC_NIST_P256"], public_ders["RSA_3072"],
                                      wrapped_with)
    with pytest.raises(TransferError, match=f"with {unwrapped_with}"):
        transfer.unwrap_key_material(blob, wrapping_keys["RSA_3072"], unwrapped_with)


def test_unwrap_with_other_wrapping_key_fails(materials, wrapping_keys, public_ders):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for algorithm in ("RSAES_OAEP_SHA_256", "RSA_AES_KEY_WRAP_SHA_256"):
        blob = transfer.wrap_key_material(materials["ECC_NIST_P256"], public_ders["RSA_2048"],
                                          algorithm)
        with pytest.raises(TransferError):
            transfer.unwrap_key_material(blob, other, algorithm)
        with pytest.raises(TransferError):  # right algorithm, key of another size
            transfer.unwrap_key_material(blob, wrapping_keys["RSA_3072"], algorithm)


def test_unwrap_refuses_non_rsa_key_and_unknown_algorithm(materials, wrapping_keys, public_ders):
    blob = transfer.wrap_key_material(materials["SYMMETRIC_DEFAULT"], public_ders["RSA_2048"],
                                      "RSAES_OAEP_SHA_256")
    with pytest.raises(TransferError, match="not an RSA private key"):
        transfer.unwrap_key_material(blob, ec.generate_private_key(ec.SECP256R1()),
                                     "RSAES_OAEP_SHA_256")
    with pytest.raises(TransferError, match="not an RSA private key"):
        transfer.unwrap_key_material(blob, public_ders["RSA_2048"], "RSAES_OAEP_SHA_256")
    with pytest.raises(TransferError, match="unknown wrapping algorithm 'RSAES_PKCS1_V1_5'"):
        transfer.unwrap_key_material(blob, wrapping_keys["RSA_2048"], "RSAES_PKCS1_V1_5")


def test_unwrap_refuses_short_aes_key(wrapping_keys, public_ders):
    """RSA_AES_KEY_WRAP's ephemeral key is AES-256; a 16-byte K is not what AWS specifies."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

    aes_key = b"\x11" * 16
    pub = wrapping_keys["RSA_2048"].public_key()
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    blob = pub.encrypt(aes_key, oaep) + aes_key_wrap_with_padding(aes_key, b"m" * 40)
    with pytest.raises(TransferError, match="16 bytes, not 32"):
        transfer.unwrap_key_material(blob, wrapping_keys["RSA_2048"], "RSA_AES_KEY_WRAP_SHA_256")
