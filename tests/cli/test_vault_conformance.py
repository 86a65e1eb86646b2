"""Conformance with Vault's CLI: rows of (setup, argv, stdin, environment) → (stdout, stderr, exit).

Each row cites the Vault source it reflects (hashicorp/vault command/*.go, go-secure-stdlib
kv-builder/builder.go, sdk/framework/field_data.go, mitchellh/cli cli.go). stdout and stderr are
exact strings, or regular expressions when written as re(...). Runs in-process through the click
group's entry (the same dispatch as the console script), stdout not a terminal.
"""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from keymgmt_cli.cli.main import Env, cli

KEY = ["write", "keymgmt/key/a", "type=aes256-gcm96"]
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
TIME = r"\d{4}-\d\d-\d\dT[0-9:.]+(Z|[+-]\d\d:\d\d)"
OK_A = "Success! Data written to: keymgmt/key/a\n"
WARN = "WARNING! The following warnings were returned from keymgmt:\n\n  * {}\n\n"


class re_:  # noqa: N801  (reads as re(...) in the table)
    def __init__(self, pattern: str):
        self.pattern = pattern

    def check(self, text: str) -> bool:
        return re.fullmatch(self.pattern, text, re.S) is not None

    def __repr__(self) -> str:
        return f"re({self.pattern!r})"


def _same(expected, text: str) -> bool:
    return expected.check(text) if isinstance(expected, re_) else expected == text


ROWS = [
    # (source, setup, argv, stdin, env, stdout, stderr, code)
    # -- issue 11 item 1: the documented first step
    ("vault docs keymgmt setup; secrets_enable.go: Success! Enabled the %s secrets engine at: %s",
     [], ["secrets", "enable", "keymgmt"], None, {},
     "Success! Enabled the keymgmt secrets engine at: keymgmt/\n", "", 0),
    ("secrets_enable.go: a path in use is refused (exit 2)", [["secrets", "enable", "keymgmt"]],
     ["secrets", "enable", "keymgmt"], None, {}, "", re_(r".*path is already in use at keymgmt/\n"), 2),
    ("secrets enable then use keymgmt/", [["secrets", "enable", "keymgmt"]], KEY, None, {}, OK_A, "", 0),
    # -- item 2: write.go returns before -field when the write returns no data
    ("write.go Run: secret == nil → Success (table) and return 0, -field not consulted", [KEY],
     ["write", "-f", "-field=name", "keymgmt/key/a/rotate"], None, {},
     "Success! Data written to: keymgmt/key/a/rotate\n", "", 0),
    ("write.go Run: secret == nil and format json → nothing, exit 0", [KEY],
     ["write", "-format=json", "-field=name", "-f", "keymgmt/key/a/rotate"], None, {}, "", "", 0),
    # -- item 3: VAULT_FORMAT, KEYMGMT_FORMAT first; yml, pretty, raw
    ("format.go Format(): VAULT_FORMAT when no -format", [KEY], ["read", "-field=type", "keymgmt/key/a"], None,
     {"VAULT_FORMAT": "json"}, '"aes256-gcm96"', "", 0),
    ("keymgmt: KEYMGMT_FORMAT takes precedence over VAULT_FORMAT", [KEY], ["read", "-field=type", "keymgmt/key/a"],
     None, {"VAULT_FORMAT": "json", "KEYMGMT_FORMAT": "table"}, "aes256-gcm96", "", 0),
    ("format.go Formatters: yml is yaml", [KEY], ["read", "-format=yml", "-field=type", "keymgmt/key/a"], None, {},
     "aes256-gcm96", "", 0),
    ("main.go: formats are lower-cased", [KEY], ["read", "-format=JSON", "-field=latest_version", "keymgmt/key/a"],
     None, {}, "1", "", 0),
    ("main.go: an unknown format is refused, exit 1", [], ["read", "-format=xml", "keymgmt/key/a"], None, {},
     "", "Invalid output format: xml\n", 1),
    ("read.go: -format=raw prints the response body", [KEY], ["read", "-format=raw", "keymgmt/key/a"], None, {},
     re_(r'\{"request_id":"' + UUID + r'","lease_id":"","renewable":false,"lease_duration":0,"data":\{.*\},'
         r'"wrap_info":null,"warnings":null,"auth":null,"mount_type":"keymgmt"\}\n'), "", 0),
    ("base_helpers.go generateFlagErrors: raw only where the command allows it", [KEY],
     ["list", "-format=raw", "keymgmt/key"], None, {}, "",
     "This command does not support the -format=raw option.\n", 1),
    # -- item 4: Vault's standard flags
    ("base.go FlagSetHTTP: -address and -namespace parse; keymgmt says they are ignored", [],
     ["write", "-address=https://vault:8200", "-namespace=ns1", *KEY[1:]], None, {}, OK_A,
     "WARNING! keymgmt has no server; ignoring -address, -namespace\n", 0),
    ("base.go FlagSetHTTP: -tls-skip-verify, -header (repeatable), -wrap-ttl, -mfa, -policy-override", [],
     ["write", "-tls-skip-verify", "-header=X-A=1", "-header", "X-B=2", "-wrap-ttl=5m", "-mfa=x", "-policy-override",
      *KEY[1:]], None, {}, OK_A,
     "WARNING! keymgmt has no server; ignoring -tls-skip-verify, -header, -wrap-ttl, -mfa, -policy-override\n", 0),
    ("base.go: -non-interactive (keymgmt never prompts: honoured, no warning)", [],
     ["write", "-non-interactive=true", *KEY[1:]], None, {}, OK_A, "", 0),
    ("base.go -output-curl-string: cannot be honoured (it would not run the command): refused", [],
     ["write", "-output-curl-string", *KEY[1:]], None, {}, "",
     re_(r"-output-curl-string is not supported: .*the command was not run\n"), 1),
    ("list.go -detailed: no key_info here, ignored with a warning", [KEY], ["list", "-detailed", "keymgmt/key"], None,
     {}, "Keys\n----\na\n", "WARNING! keymgmt has no server; ignoring -detailed\n", 0),
    ("Go flag: an undefined flag, exit 1", [], ["read", "-n", "keymgmt/key/a"], None, {}, "",
     "flag provided but not defined: -n\n", 1),
    # -- item 5: Go booleans
    ("Go flag boolFlag: -f=true", [KEY], ["write", "-f=true", "keymgmt/key/a/rotate"], None, {},
     "Success! Data written to: keymgmt/key/a/rotate\n", "", 0),
    ("Go flag boolFlag: -force=false, then write.go: Must supply data or use -force", [KEY],
     ["write", "-force=false", "keymgmt/key/a/rotate"], None, {}, "", "Must supply data or use -force\n", 1),
    ("Go flag: strconv.ParseBool refuses (the value is not echoed: keymgmt's difference)", [],
     ["write", "-f=maybe", "keymgmt/key/a/rotate"], None, {}, "",
     "invalid boolean value for -f: parse error (true, false, 1, 0, t, f)\n", 1),
    # -- item 6: the DATA grammar (kv-builder)
    ("builder.go add: empty strings are ignored", [], ["write", "keymgmt/key/a", "", "type=aes256-gcm96", ""],
     None, {}, OK_A, "", 0),
    ("builder.go add: \\@ escapes a leading @ (then the field refuses the value)", [],
     ["write", "keymgmt/key/a", "type=\\@x"], None, {}, "",
     "Error writing data to keymgmt/key/a: invalid type; allowed: aes256-gcm96, rsa-2048, rsa-3072, rsa-4096, "
     "ecdsa-p256, ecdsa-p384, ecdsa-p521\n", 2),
    ("builder.go addReader: a JSON object overwrites earlier keys", [],
     ["write", "keymgmt/key/a", "type=rsa-2048", "-"], b'{"type": "aes256-gcm96"}', {}, OK_A, "", 0),
    ("builder.go add: k=- is stdin exactly as given (a trailing newline stays)", [],
     ["write", "keymgmt/key/a", "type=-"], b"aes256-gcm96\n", {}, "",
     re_(r"Error writing data to keymgmt/key/a: invalid type; .*\n"), 2),
    ("write.go: Failed to parse K=V data (exit 1); the argument is not echoed", [],
     ["write", "keymgmt/key/a", "AKIASECRETVALUE"], None, {}, "",
     "Failed to parse K=V data: invalid key/value pair (argument 1): format must be key=value\n", 1),
    ("builder.go: stdin once", [], ["write", "keymgmt/key/a", "type=-", "-"], b"x", {}, "",
     "Failed to parse K=V data: invalid key/value pair (argument 2): stdin already consumed\n", 1),
    # -- item 7: list.go with nothing to list
    ("list.go: non-table format and no data → {} on stdout, exit 2", [], ["list", "-format=json", "keymgmt/key"],
     None, {}, "{}\n", "", 2),
    ("list.go: the same in yaml", [], ["list", "-format=yaml", "keymgmt/key"], None, {}, "{}\n", "", 2),
    ("list.go: table → No value found at PATH/ (ensureTrailingSlash), exit 2", [], ["list", "keymgmt/key"], None,
     {}, "", "No value found at keymgmt/key/\n", 2),
    # -- item 8: weak field decoding (framework field_data.go + mapstructure.WeakDecode)
    ("field_data.go TypeBool: '' is false", [KEY], ["write", "-field=x", "keymgmt/key/a", "deletion_allowed="],
     None, {}, OK_A, "", 0),
    ("field_data.go TypeBool: 1 is true", [KEY], ["write", "keymgmt/key/a", "deletion_allowed=1"], None, {},
     OK_A, "", 0),
    ("field_data.go TypeBool: a JSON number's text (1)", [KEY], ["write", "keymgmt/key/a", "-"],
     b'{"deletion_allowed": 1}', {}, OK_A, "", 0),
    ("field_data.go TypeBool: ParseBool refuses 2 → the request fails, exit 2", [KEY],
     ["write", "keymgmt/key/a", "-"], b'{"deletion_allowed": 2}', {}, "",
     "Error writing data to keymgmt/key/a: field 'deletion_allowed' must be a boolean (true, false, 1, 0 or "
     "empty)\n", 2),
    ("field_data.go TypeInt: '' is 0", [KEY], ["write", "keymgmt/key/a", "min_enabled_version="], None, {},
     OK_A, "", 0),
    ("field_data.go TypeInt: ParseInt base 0 (0x1)", [KEY], ["write", "keymgmt/key/a", "min_enabled_version=0x1"],
     None, {}, OK_A, "", 0),
    ("field_data.go TypeInt: no spaces, no fractions", [KEY], ["write", "keymgmt/key/a", "min_enabled_version=1.5"],
     None, {}, "", "Error writing data to keymgmt/key/a: field 'min_enabled_version' must be an integer\n", 2),
    # -- item 9: flags after the path
    ("base_helpers.go generateFlagWarnings: flags after a positional are not flags (table: a warning)", [KEY],
     ["read", "keymgmt/key/a", "-field=name"], None, {},
     re_(r"Key +Value\n.*"),
     "Command flags must be provided before positional arguments. The following arguments will not be parsed "
     "as flags: [-field=name]\n" + WARN.format("Endpoint ignored these unrecognized parameters: [-field]"), 0),
    ("main.go: -format anywhere is honoured (and no warning for it)", [KEY],
     ["read", "keymgmt/key/a", "-format=json"], None, {}, re_(r'\{\n  "request_id": .*'), "", 0),
    # -- where scripts look
    ("format.go OutputSecret: Key/Value rows, sorted, %v of maps", [KEY], ["read", "keymgmt/key/a"], None, {},
     re_(r"Key                    Value\n---                    -----\ndeletion_allowed       false\n"
         r"keys                   map\[1:map\[creation_time:" + TIME + r"\]\]\nlatest_version         1\n"
         r"min_enabled_version    0\nname                   a\ntype                   aes256-gcm96\n"), "", 0),
    ("util.go PrintRawField: %v, no newline when not a terminal", [KEY], ["read", "-field=keys", "keymgmt/key/a"],
     None, {}, re_(r"map\[1:map\[creation_time:" + TIME + r"\]\]"), "", 0),
    ("util.go PrintRawField: indented JSON for a structured field in json", [KEY],
     ["read", "-format=json", "-field=keys", "keymgmt/key/a"], None, {},
     re_(r'\{\n  "1": \{\n    "creation_time": "' + TIME + r'"\n  \}\n\}'), "", 0),
    ("util.go RawField: request_id", [KEY], ["read", "-field=request_id", "keymgmt/key/a"], None, {}, re_(UUID), "", 0),
    ("util.go RawField: data is the whole map", [KEY], ["read", "-field=data", "keymgmt/key/a"], None, {},
     re_(r"map\[deletion_allowed:false keys:map\[.*\] latest_version:1 min_enabled_version:0 name:a "
         r"type:aes256-gcm96\]"), "", 0),
    ("util.go PrintRawField: absent field, exit 1", [KEY], ["read", "-field=nope", "keymgmt/key/a"], None, {}, "",
     'Field "nope" not present in secret\n', 1),
    ("format.go printWarnings; field_data unknown fields sorted", [],
     ["write", "keymgmt/key/a", "zeta=1", "type=aes256-gcm96", "alpha=2"], None, {}, OK_A,
     WARN.format("Endpoint ignored these unrecognized parameters: [alpha zeta]"), 0),
    ("read.go: 404 → No value found at PATH, exit 2", [], ["read", "keymgmt/key/missing"], None, {}, "",
     re_(r"No value found at keymgmt/key/missing\n(hint: .*\n)?"), 2),
    ("base_helpers.go sanitizePath: spaces and slashes around the path go", [KEY],
     ["read", "-field=name", " /keymgmt/key/a/ "], None, {}, "a", "", 0),
    ("write.go: the sanitised path in the message", [], ["write", "/keymgmt/key/a/", "type=aes256-gcm96"], None, {},
     OK_A, "", 0),
    ("read.go: read PATH k=v sends query parameters", [KEY], ["read", "-field=name", "keymgmt/key/a", "version=1"],
     None, {}, "a", "", 0),
    ("mitchellh/cli cli.go: an unknown command exits 127", [], ["frobnicate"], None, {}, "",
     re_(r"Unknown command: frobnicate.*\n"), 127),
    ("write.go: Not enough arguments (expected 1, got 0), exit 1", [], ["write"], None, {}, "",
     "Not enough arguments (expected 1, got 0)\n", 1),
    ("list.go: Too many arguments", [], ["list", "keymgmt/key", "x"], None, {}, "",
     "Too many arguments (expected 1, got 2)\n", 1),
    ("write.go: any failure of the request exits 2", [KEY], ["write", "keymgmt/key/a", "min_enabled_version=5"],
     None, {}, "", re_(r"Error writing data to keymgmt/key/a: min_enabled_version 5 is above .*\n"), 2),
    ("delete.go: Success! Data deleted (if it existed) at: PATH", [KEY + ["deletion_allowed=true"]],
     ["delete", "keymgmt/key/a"], None, {}, "Success! Data deleted (if it existed) at: keymgmt/key/a\n", "", 0),
    ("delete.go: non-table formats print nothing", [KEY + ["deletion_allowed=true"]],
     ["delete", "-format=json", "keymgmt/key/a"], None, {}, "", "", 0),
    ("list.go OutputList json: the bare list", [KEY], ["list", "-format=json", "keymgmt/key"], None, {},
     '[\n  "a"\n]\n', "", 0),
]


@pytest.fixture
def run(cli_environ):
    def invoke(argv, stdin=None, env=None):
        environ = {k: v for k, v in cli_environ.items() if k not in ("VAULT_FORMAT", "NO_COLOR")}
        environ.update(env or {})
        result = CliRunner().invoke(cli, argv, obj=Env(environ), input=stdin)
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        return result
    return invoke


@pytest.mark.parametrize("source,setup,argv,stdin,env,stdout,stderr,code", ROWS, ids=[r[0][:60] for r in ROWS])
def test_conformance(run, source, setup, argv, stdin, env, stdout, stderr, code):
    for command in setup:
        assert run(command).exit_code == 0, command
    result = run(argv, stdin, env)
    assert _same(stdout, result.stdout), (source, result.stdout)
    assert _same(stderr, result.stderr), (source, result.stderr)
    assert result.exit_code == code, (source, result.exit_code, result.stderr)


def test_the_table_can_fail(run):
    """A row whose expectation is wrong does fail the check (the table is not vacuous)."""
    result = run(["list", "-format=json", "keymgmt/key"])
    assert not _same("", result.stdout) and _same("{}\n", result.stdout) and result.exit_code == 2


def test_json_key_order_is_go_encoders(run):
    """api.Secret's struct order for the envelope; Go sorts the keys of every map inside data."""
    run(["write", "keymgmt/key/b", "type=ecdsa-p256"])
    body = run(["read", "-format=json", "keymgmt/key/b"]).stdout
    doc = json.loads(body)
    assert list(doc) == ["request_id", "lease_id", "lease_duration", "renewable", "data", "warnings", "mount_type"]
    assert list(doc["data"]) == sorted(doc["data"])
    assert list(doc["data"]["keys"]["1"]) == ["creation_time", "public_key"]


def test_yaml_sorts_every_level_as_ghodss_yaml(run):
    run(["write", "keymgmt/key/b", "type=aes256-gcm96"])
    lines = [line for line in run(["read", "-format=yaml", "keymgmt/key/b"]).stdout.splitlines()
             if not line.startswith(" ")]
    keys = [line.split(":")[0] for line in lines]
    assert keys == sorted(keys) == ["data", "lease_duration", "lease_id", "mount_type", "renewable", "request_id",
                                    "warnings"]
