"""The audit trail: one request record when a mutating command starts, one response record when it
ends (or when the next run finds that it crashed), in Vault's audit-device JSON shape.

Modules: ``keys`` (the two keys derived from the master key, and the ``hmac-sha256:`` digests of
secret values), ``records`` (the record shapes), ``chain`` (sequence numbers and the authenticated
hash chain, and its verification), ``filetrail`` (the append-only JSON-lines backend beside a
local state), ``doctrail`` (the document-store backend for a shared DynamoDB state), ``calls``
(the proxy that records every AWS call a provider makes, its request id and the caller identity),
``journal`` (each call written down as it returns, for the crashed record of a killed command),
``session`` (one audited command), ``operations`` (the records of the state-changing ``operator``
commands, which run on a store and a master key rather than an engine).
"""
