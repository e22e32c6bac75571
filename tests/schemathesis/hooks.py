"""schemathesis hooks for keyward (loaded through SCHEMATHESIS_HOOKS by scripts/schemathesis.sh).

Each request gets its own client address, as traffic from many clients would: keyward counts
invalid keys per `CF-Connecting-IP` and throttles a client after 20 a minute, and the fuzzer sends
far more than that (every verify call with a made-up key is one). Local wrangler keeps the header
a client sends; the platform overwrites it. Addresses come from 2001:db8::/32, the documentation
range: a header value only, no traffic goes there.
"""

import secrets

import schemathesis


@schemathesis.hook
def before_call(context, case, kwargs):
    h = secrets.token_hex(4)
    case.headers = {**(case.headers or {}), "CF-Connecting-IP": f"2001:db8::{h[:4]}:{h[4:]}"}
