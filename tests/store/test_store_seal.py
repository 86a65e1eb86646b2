"""Sealing secrets: AES-256-GCM, bound to where they belong."""

import base64
import os

import pytest

from keymgmt_cli.errors import StoreError
from keymgmt_cli.store import SecretBox
from keymgmt_cli.store.masterkey import MasterKey
from keymgmt_cli.store.seal import Sealer

KEY = bytes(range(32))
AAD = "m1/keys/k1#versions.1.material"


def _unb64(token):
    body = token[3:]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


def _b64(raw):
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_round_trip():
    sealer = Sealer(KEY)
    for plaintext in [b"", b"x", os.urandom(4096)]:
        token = sealer.seal(plaintext, AAD)
        assert token.startswith("v1.")
        assert Sealer(KEY).unseal(token, AAD) == plaintext


def test_token_is_nonce_ciphertext_tag_in_unpadded_base64url():
    token = Sealer(KEY).seal(b"0123456789", AAD)
    assert set(token[3:]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert len(_unb64(token)) == 12 + 10 + 16


def test_random_nonce_makes_every_seal_different():
    sealer = Sealer(KEY)
    tokens = {sealer.seal(b"same", AAD) for _ in range(50)}
    assert len(tokens) == 50
    assert len({_unb64(t)[:12] for t in tokens}) == 50


def test_wrong_aad_fails():
    token = Sealer(KEY).seal(b"secret", AAD)
    for other in ["m1/keys/k2#versions.1.material", "m1/keys/k1#versions.2.material", "", AAD + " "]:
        with pytest.raises(StoreError) as err:
            Sealer(KEY).unseal(token, other)
        assert str(err.value) == f"cannot unseal {other}: wrong master key or tampered state"


def test_wrong_key_fails():
    token = Sealer(KEY).seal(b"secret", AAD)
    with pytest.raises(StoreError, match="wrong master key or tampered state"):
        Sealer(bytes(32)).unseal(token, AAD)


def test_any_tampering_fails():
    sealer = Sealer(KEY)
    token = sealer.seal(b"a secret worth stealing", AAD)
    raw = _unb64(token)
    for i in range(len(raw)):  # flip a bit in every byte: nonce, ciphertext and tag
        tampered = bytearray(raw)
        tampered[i] ^= 0x01
        with pytest.raises(StoreError, match="wrong master key or tampered state"):
            sealer.unseal("v1." + _b64(bytes(tampered)), AAD)
    for bad in ["v1." + _b64(raw[:-1]), "v1." + _b64(raw + b"\0")]:
        with pytest.raises(StoreError, match="wrong master key or tampered state"):
            sealer.unseal(bad, AAD)


@pytest.mark.parametrize("bad", ["", "v1.", "v2." + "A" * 40, "v1.!!!!", "v1." + "A" * 10,
                                 "plain text", None, 42, "v1.ñ"])
def test_malformed_tokens_fail_cleanly(bad):
    with pytest.raises(StoreError, match=f"cannot unseal {AAD}: "):
        Sealer(KEY).unseal(bad, AAD)


def test_sealed_value_carries_no_trace_of_the_secret():
    secret = b"AKIAEXAMPLEDISTINCTIVE-secret-value-0123456789"
    token = Sealer(KEY).seal(secret, AAD)
    raw = _unb64(token)
    assert secret not in raw
    traces = [secret.decode(), secret.hex(), secret.hex().upper()]
    for shift in range(3):  # base64 of the secret at every alignment, both alphabets
        chunk = secret[shift:]
        traces += [base64.b64encode(chunk).decode()[4:-4], _b64(chunk)[4:-4]]
    for trace in traces:
        assert trace[:20] not in token


def test_key_must_be_32_bytes_and_never_shows():
    with pytest.raises(ValueError):
        Sealer(b"short")
    assert KEY.hex() not in repr(Sealer(KEY))
    assert "key=" not in repr(MasterKey(KEY, "file:/x")) and KEY.hex() not in repr(MasterKey(KEY, "f"))


def test_secret_box_loads_the_key_once_and_only_when_used():
    calls = []

    def loader():
        calls.append(1)
        return MasterKey(KEY, "env:KEYMGMT_MASTER_KEY")

    box = SecretBox(loader)
    assert calls == []
    token = box.seal(b"s", AAD)
    assert box.unseal(token, AAD) == b"s"
    assert box.source == "env:KEYMGMT_MASTER_KEY"
    assert calls == [1]
    assert Sealer(KEY).unseal(token, AAD) == b"s"


def test_secret_box_passes_loader_errors_through():
    def loader():
        raise StoreError("no master key: nowhere")

    box = SecretBox(loader)
    with pytest.raises(StoreError, match="no master key"):
        box.unseal("v1.xxx", AAD)
