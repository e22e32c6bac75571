"""Verifies X-Keyward-Signature (docs/origin-signing.md). headers: lower-case names -> values;
path_and_query: the request target exactly as received; secret: a str, or [new, old] in a rotation."""
import hashlib, hmac, re


def verify(headers, method, path_and_query, secret, now_seconds, tolerance_seconds=300):
    t, given = None, []
    for item in headers.get("x-keyward-signature", "").split(","):
        k, _, v = item.partition("=")
        if k == "t" and (t is not None or not re.fullmatch(r"[0-9]{1,15}", v)):
            return False
        if k == "t":
            t = v
        if k == "v1":
            given.append(v.encode())
    if t is None or abs(now_seconds - int(t)) > tolerance_seconds:
        return False
    identity = ""
    if "x-keyward-key-id" in headers:
        identity = "\n".join(headers.get(h, "") for h in ("x-keyward-key-id", "x-keyward-workspace", "x-keyward-scopes", "x-keyward-environment", "x-keyward-groups"))
    signed = "\n".join(["v1", t, method, path_and_query, identity]).encode()
    for s in [secret] if isinstance(secret, (str, bytes)) else secret:
        want = hmac.new(s.encode() if isinstance(s, str) else s, signed, hashlib.sha256).hexdigest().encode()
        if any(hmac.compare_digest(want, g) for g in given):
            return True
    return False
