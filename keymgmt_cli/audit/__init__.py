"""The audit trail: one request record when a mutating command starts, one response record when it
ends (or when the next run finds that it crashed), in Vault's audit-device JSON shape.

Modules: ``keys`` (the two keys derived from the master key, and the ``hmac-sha256:`` digests of
secret values), ``records`` (the record shapes), ``chain`` (sequence numbers and the authenticated
hash chain, and its verification), ``filetrail`` (the append-only JSON-lines backend beside a
local state), ``doctrail`` (the document-store backend for a shared DynamoDB state), ``calls``
(the proxy that records every AWS call a provider makes), ``session`` (one audited command).
"""
