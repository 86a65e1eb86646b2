"""Storage, seal and endpoint URLs as keymgmt shows and records them: never with user info.

``dynamodb://TABLE?region=R&endpoint=https://user:password@host`` would carry a password in
clear into an error line, ``status``, the retired marker and the audit trail (the operator
commands record their URLs as plain fields). Credentials for AWS come from the credential chain,
never from a URL, so an endpoint with user info is refused where the URL is parsed
(``refuse_userinfo``), and every URL that is shown or recorded goes through ``without_userinfo``
first, in case one was written before this rule or by hand. Standard library only; no ``re`` (the
read path imports the store).
"""

from __future__ import annotations

from ..errors import StoreError

REDACTED = "<redacted>"


def without_userinfo(text: str) -> str:
    """``text`` with the user info of every ``//authority`` in it (the URL's own and one nested in
    its query, such as ``endpoint=``) replaced by ``<redacted>``: ``https://u:p@h`` ->
    ``https://<redacted>@h``. The authority ends at the next ``/``, ``?`` or ``#`` (RFC 3986
    3.2), and its user info at the last ``@`` before that, so a raw ``@`` in a password is covered."""
    out: list[str] = []
    rest = text
    while True:
        start = rest.find("//")
        if start < 0:
            out.append(rest)
            return "".join(out)
        start += 2
        end = len(rest)
        for stop in "/?#":
            found = rest.find(stop, start)
            if 0 <= found < end:
                end = found
        at = rest.rfind("@", start, end)
        if at < 0:
            out.append(rest[:end])
        else:
            out.append(rest[:start] + REDACTED + rest[at:end])
        rest = rest[end:]


def refuse_userinfo(url: str, what: str) -> None:
    """StoreError when ``url`` (an endpoint) carries user info; the message shows it without."""
    if without_userinfo(url) != url:
        raise StoreError(f"{what} {without_userinfo(url)[:120]!r} carries user info (a name or password "
                         "before '@'), which keymgmt never sends and would otherwise show and record",
                         hint="remove it: AWS credentials come from the credential chain "
                              "(AWS_PROFILE, environment, role), never from a URL")
