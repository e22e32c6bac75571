"""python3 -m unittest discover -s examples/origin-verify  (vectors shared with cargo test and node)"""
import json
import os
import unittest

from verify import verify

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "vectors.json"), encoding="utf-8") as f:
    V = json.load(f)


def identity_headers(identity):
    if identity == "":
        return {}
    k, w, s, e, g = identity.split("\n")
    return {"x-keyward-key-id": k, "x-keyward-workspace": w, "x-keyward-scopes": s, "x-keyward-environment": e, "x-keyward-groups": g}


class VerifyTest(unittest.TestCase):
    def test_documented_vectors_verify_at_t_and_at_the_edges_of_the_window(self):
        self.assertEqual(len(V["vectors"]), 5)
        for v in V["vectors"]:
            headers = {**identity_headers(v["identity"]), "x-keyward-signature": v["header"]}
            for now in (v["t"], v["t"] + 300, v["t"] - 300):
                self.assertTrue(verify(headers, v["method"], v["path_and_query"], V["secret"], now), v["name"])
            self.assertFalse(verify(headers, v["method"], v["path_and_query"], V["secret"], v["t"] + 301))

    def test_shared_request_table(self):
        self.assertGreaterEqual(len(V["requests"]), 30)
        for r in V["requests"]:
            with self.subTest(r["name"]):
                secret = r.get("secrets", V["secret"])
                got = verify(r["headers"], r["method"], r["path_and_query"], secret, r["now"], V["tolerance_seconds"])
                self.assertEqual(got, r["valid"])

    def test_tampering_with_any_field_fails(self):
        v = next(x for x in V["vectors"] if x["name"] == "keyed GET by a key in two groups")  # every identity field non-empty
        headers = {**identity_headers(v["identity"]), "x-keyward-signature": v["header"]}

        def ok(h, m=v["method"], pq=v["path_and_query"], now=v["t"], secret=V["secret"]):
            return verify(h, m, pq, secret, now)

        self.assertTrue(ok(headers))
        self.assertTrue(ok(headers, secret=V["secret"].encode()), "bytes secret")
        self.assertFalse(ok(headers, m="PUT"))
        self.assertFalse(ok(headers, pq="/projects/41?x=1"))
        self.assertFalse(ok(headers, pq="/projects/42?x=10"))
        for name in ("x-keyward-key-id", "x-keyward-workspace", "x-keyward-scopes", "x-keyward-environment", "x-keyward-groups"):
            self.assertFalse(ok({**headers, name: headers[name] + "x"}), name)
            self.assertFalse(ok({k: h for k, h in headers.items() if k != name}), name + " removed")
        later = v["header"].replace("t=%d" % v["t"], "t=%d" % (v["t"] + 5))
        self.assertFalse(ok({**headers, "x-keyward-signature": later}, now=v["t"] + 5))
        self.assertFalse(ok(headers, now=v["t"] + 3600), "stale")
        self.assertFalse(ok(headers, secret="wrong"))


if __name__ == "__main__":
    unittest.main()
