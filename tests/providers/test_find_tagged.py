"""find_tagged and verify's stray search among many keys that are not ours (issue 17).

Two paths, each proven to name every stray: tag:GetResources (moto implements it) and, where it
is refused (AccessDenied, an emulator without the API), ListKeys + concurrent ListResourceTags.
Both on the in-memory twin and on AwsKmsProvider against moto in-process."""

from __future__ import annotations


import pytest
from botocore.stub import Stubber

from keymgmt_cli.engine.core import Engine
from keymgmt_cli.engine.routing import Request
from keymgmt_cli.engine.verify import verify
from keymgmt_cli.providers import tagsearch
from keymgmt_cli.providers.base import ProviderConfig
from keymgmt_cli.providers.memory import MemoryKms, MemoryKmsWorld
from keymgmt_cli.store.memory import MemoryStore

from twins import memory_secret_box
from support.fakeaws import fake_aws

REGION = "us-west-1"
TS = 1700000000
FOREIGN = 150


@pytest.fixture(autouse=True)
def clean_aws_env(monkeypatch, tmp_path):
    fake_aws(monkeypatch, access_key="testing", secret_key="testing")


def ours(state_id: str) -> dict[str, str]:
    return {"keymgmt:state_id": state_id, "keymgmt:mount": "keymgmt/", "keymgmt:kms": "aws1"}


def plant(kms, state_id: str, strays: int = 3, foreign: int = FOREIGN) -> list[str]:
    """``foreign`` keys that are not ours (untagged, another state, another provider, another
    mount: each differs from ours in one tag) and ``strays`` that carry all our tags."""
    near_misses = [{**ours(state_id), "keymgmt:state_id": "other-state"},
                   {**ours(state_id), "keymgmt:kms": "aws2"},
                   {**ours(state_id), "keymgmt:mount": "other/"},
                   {"team": "payments"}, {}]
    for i in range(foreign):
        kms.create_key(key_spec="SYMMETRIC_DEFAULT", key_usage="ENCRYPT_DECRYPT",
                       description=f"not ours {i}", tags=near_misses[i % len(near_misses)])
    planted = [kms.create_key(key_spec="SYMMETRIC_DEFAULT", key_usage="ENCRYPT_DECRYPT",
                              description="stray", tags={**ours(state_id), "keymgmt:op": f"op{i}"})
               for i in range(strays)]
    return sorted(planted)


def distributed_engine(factory) -> Engine:
    engine = Engine(MemoryStore(), memory_secret_box(), factory, clock=lambda: float(TS))
    for path, data in [("keymgmt/kms/aws1", {"provider": "awskms", "key_collection": REGION}),
                       ("keymgmt/key/k", {"type": "aes256-gcm96"}),
                       ("keymgmt/kms/aws1/key/k", {"purpose": "encrypt,decrypt"})]:
        engine.handle(Request("write", path, data))
    return engine


def strays_in(result) -> list[str]:
    return sorted(d["key_id"] for d in result["drift"] if d["problem"].startswith("stray key"))


# -- the in-memory twin ------------------------------------------------------------------------

def test_twin_finds_every_stray_with_one_get_resources():
    world = MemoryKmsWorld()
    kms = MemoryKms(REGION, world)
    planted = plant(kms, "s1")
    MemoryKms("eu-west-1", world).create_key(key_spec="SYMMETRIC_DEFAULT", key_usage="ENCRYPT_DECRYPT",
                                             description="ours, elsewhere", tags=ours("s1"))
    del world.calls[:]
    assert sorted(kms.find_tagged(ours("s1"))) == planted
    assert world.calls == ["GetResources"]
    assert "tag:GetResources" in kms.tag_search_note


@pytest.mark.parametrize("refusal", ["AccessDeniedException", "UnknownOperationException"])
def test_twin_refused_tagging_lists_and_says_so_once(refusal):
    world = MemoryKmsWorld()
    kms = MemoryKms(REGION, world)
    planted = plant(kms, "s1")
    world.fail_next("GetResources", refusal)
    world.fail_next("ListResourceTags", "AccessDeniedException", count=5)  # keys we may not read
    del world.calls[:]
    found = sorted(kms.find_tagged(ours("s1")))
    assert found == planted or set(found) < set(planted)  # a refused read is never "ours"
    assert world.calls.count("GetResources") == 1 and world.calls.count("ListKeys") == 1
    assert world.calls.count("ListResourceTags") == FOREIGN + len(planted)
    assert refusal in kms.tag_search_note and "ListKeys + ListResourceTags" in kms.tag_search_note
    del world.calls[:]
    assert sorted(kms.find_tagged(ours("s1"))) == planted  # the refusal is not asked again
    assert "GetResources" not in world.calls


def test_find_tagged_needs_a_tag():
    with pytest.raises(ValueError):
        MemoryKms(REGION).find_tagged({})


@pytest.mark.parametrize("refused", [False, True])
def test_verify_names_every_stray_among_foreign_keys_on_the_twin(refused):
    world = MemoryKmsWorld()
    world.tagging_refused = refused
    engine = distributed_engine(lambda cfg: MemoryKms(cfg.region, world))
    planted = plant(MemoryKms(REGION, world), engine.state_id())
    del world.calls[:]
    result = verify(engine)
    assert strays_in(result) == planted and not result["in_sync"]
    if refused:
        assert world.calls.count("ListResourceTags") >= FOREIGN + len(planted)
    else:
        assert "ListKeys" not in world.calls
        # the distributed key's own check, and one per stray: which copy of the state made it
        # (engine/instances.py names the other instance)
        assert world.calls.count("ListResourceTags") == 1 + len(planted)


# -- AwsKmsProvider against moto -----------------------------------------------------------------

@pytest.fixture
def moto_aws(monkeypatch):
    import functools

    import moto.kms.models
    from moto import mock_aws

    from keymgmt_cli.localkms import moto_import

    # moto makes an RSA-2048 signing key for every key, symmetric ones too (~0.15 s each); these
    # tests never sign, so one per key spec will do
    monkeypatch.setattr(moto.kms.models, "generate_private_key",
                        functools.lru_cache(maxsize=None)(moto.kms.models.generate_private_key))
    moto_import.install()
    with mock_aws():
        yield


def aws_provider(refusal: tuple[str, int] | None = None):
    """An AwsKmsProvider on moto; ``refusal`` = (code, HTTP status) answered to every
    GetResources, as IAM without tag:GetResources or an emulator without the API answers."""
    from keymgmt_cli.providers.awskms import connect

    provider = connect(ProviderConfig(region=REGION), pacing=False)
    if refusal is not None:
        provider._tagging_client()
        stub = Stubber(provider._tagging)
        for _ in range(5):
            stub.add_client_error("get_resources", service_error_code=refusal[0],
                                  service_message="refused", http_status_code=refusal[1])
        stub.activate()
    return provider


def test_aws_get_resources_finds_every_stray_in_one_call(moto_aws):
    provider = aws_provider()
    planted = plant(provider, "s1")
    provider.in_region("eu-west-1").create_key(key_spec="SYMMETRIC_DEFAULT", key_usage="ENCRYPT_DECRYPT",
                                               description="ours, elsewhere", tags=ours("s1"))
    del provider.calls[:]
    assert sorted(provider.find_tagged(ours("s1"))) == planted
    assert provider.calls == ["GetResources"]
    assert provider.tag_search_note == f"keys tagged as ours found with tag:GetResources in {REGION}"


def test_aws_get_resources_follows_pages(moto_aws):
    provider = aws_provider()
    planted = plant(provider, "s1", strays=130, foreign=5)
    del provider.calls[:]
    assert sorted(provider.find_tagged(ours("s1"))) == planted
    assert len(provider.calls) >= 2 and set(provider.calls) == {"GetResources"}  # pages


@pytest.mark.parametrize("refusal", [("AccessDeniedException", 400), ("InternalFailure", 501),
                                     ("UnknownOperationException", 400)])
def test_aws_refused_tagging_falls_back_to_listing(moto_aws, refusal):
    provider = aws_provider(refusal)
    planted = plant(provider, "s1")
    del provider.calls[:]
    assert sorted(provider.find_tagged(ours("s1"))) == planted
    assert provider.calls.count("ListKeys") == 1
    assert provider.calls.count("ListResourceTags") == FOREIGN + len(planted)
    assert refusal[0] in provider.tag_search_note
    # moto in process answers botocore's requests from a before-send hook: the tags are read
    # through botocore, and the note says why (the lean path would reach the network instead)
    assert provider.tag_search_note.endswith("tags read with botocore (48 threads): a botocore "
                                             "before-send handler answers this client's requests "
                                             "(a mock or a stub)")
    del provider.calls[:]
    assert sorted(provider.find_tagged(ours("s1"))) == planted
    assert "GetResources" not in provider.calls  # said once, not asked again


@pytest.mark.parametrize("refused", [False, True])
def test_verify_names_every_stray_with_aws_provider(moto_aws, refused):
    made = []

    def factory(cfg):
        from keymgmt_cli.providers.awskms import connect

        if refused:
            provider = aws_provider(("AccessDeniedException", 400))
        else:
            provider = connect(cfg, pacing=False)
        made.append(provider)
        return provider

    engine = distributed_engine(factory)
    planted = plant(made[0], engine.state_id())
    result = verify(engine)
    assert strays_in(result) == planted
    search = [p for p in made if p.tag_search_note]
    assert search and ("refused" in search[0].tag_search_note) is refused

# The listing's concurrency (requests in flight, bounded by the worker count) is counted in
# tests/providers/test_bulkread.py, where the requests are sent.
