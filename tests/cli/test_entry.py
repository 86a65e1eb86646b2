"""cli/entry.py: the garbage collector's settings for one command, and the frozen heap at exit on
every way out (the verbs' return code, click's SystemExit, an exception)."""

from __future__ import annotations

import gc
import sys

import pytest

from keymgmt_cli.cli import entry, fast
import keymgmt_cli.cli.main as click_main


@pytest.fixture
def collector():
    thresholds = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.unfreeze()  # the test process goes on: nothing it made stays out of the collector
    gc.set_threshold(*thresholds)


def _run(monkeypatch, argv, fast_result, full=None):
    monkeypatch.setattr(sys, "argv", ["keymgmt", *argv])
    monkeypatch.setattr(entry, "no_core_dumps", lambda: None)  # the test process keeps its limits
    monkeypatch.setattr(fast, "run", lambda args: fast_result(args))
    if full is not None:
        monkeypatch.setattr(click_main, "main", full)
    with pytest.raises(BaseException) as ended:
        entry.main()
    return ended.value


def test_a_verb_exits_with_its_code_and_a_frozen_heap(monkeypatch, collector):
    seen = []
    ended = _run(monkeypatch, ["read", "keymgmt/key/k"], lambda args: seen.append(args) or 2)
    assert isinstance(ended, SystemExit) and ended.code == 2
    assert seen == [["read", "keymgmt/key/k"]]
    assert gc.get_threshold() == entry.GC_THRESHOLDS
    assert gc.get_freeze_count() > 0


def test_a_click_command_exits_through_the_freeze_too(monkeypatch, collector):
    def full():
        assert gc.get_freeze_count() == 0  # not before the command has run
        raise SystemExit(3)

    ended = _run(monkeypatch, ["status"], lambda args: None, full)
    assert isinstance(ended, SystemExit) and ended.code == 3
    assert gc.get_freeze_count() > 0


def test_an_error_escaping_the_command_is_not_hidden(monkeypatch, collector):
    def boom(args):
        raise KeyboardInterrupt

    ended = _run(monkeypatch, ["write", "keymgmt/key/k"], boom)
    assert isinstance(ended, KeyboardInterrupt)
    assert gc.get_freeze_count() > 0
