"""Mint JWK sets and tokens for tests/jwt.rs with an independent implementation (PyJWT and
cryptography). Reads a JSON request on stdin, writes JSON on stdout:

  in:  {"keys": [{"kid": "r1", "type": "RSA" | "EC256" | "EC384" | "Ed25519" | "oct",
                  "secret": "for oct"}],
        "tokens": [{"name": "t", "kid": "r1", "alg": "RS256", "claims": {...},
                    "headers": {...}, "raw": "none" | "hs-with-public-pem" (optional)}]}
       "verify": [{"token": "...", "jwk": {...}, "alg": "RS256"}] (optional)
  out: {"public": {"keys": [...]}, "private": {"keys": [...]}, "tokens": {"t": "..."},
        "verified": [{"ok": true, "claims": {...}, "header": {...}} | {"ok": false, ...}]}
"""
import base64
import hashlib
import hmac
import json
import sys

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import RSAAlgorithm


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_key(spec):
    kind = spec["type"]
    if kind == "RSA":
        priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pub_jwk = json.loads(RSAAlgorithm.to_jwk(priv.public_key()))
        priv_jwk = json.loads(RSAAlgorithm.to_jwk(priv))
    elif kind in ("EC256", "EC384"):
        curve = ec.SECP256R1() if kind == "EC256" else ec.SECP384R1()
        priv = ec.generate_private_key(curve)
        # Coordinates written here at the curve's full size (RFC 7518 6.2.1.2): Debian's PyJWT
        # drops leading zero bytes, so about one key in 128 had a 31-byte coordinate that
        # go-jose (and we) rightly refuse, failing a test at random.
        size = (curve.key_size + 7) // 8
        nums = priv.private_numbers()
        pub = nums.public_numbers
        pub_jwk = {"kty": "EC", "crv": "P-256" if kind == "EC256" else "P-384",
                   "x": b64(pub.x.to_bytes(size, "big")), "y": b64(pub.y.to_bytes(size, "big"))}
        priv_jwk = dict(pub_jwk, d=b64(nums.private_value.to_bytes(size, "big")))
    elif kind == "Ed25519":
        priv = ed25519.Ed25519PrivateKey.generate()
        raw_pub = priv.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        raw_priv = priv.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
            serialization.NoEncryption())
        pub_jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64(raw_pub)}
        priv_jwk = dict(pub_jwk, d=b64(raw_priv))
    elif kind == "oct":
        priv = spec["secret"].encode()
        pub_jwk = {"kty": "oct", "k": b64(priv)}
        priv_jwk = dict(pub_jwk)
    else:
        raise SystemExit("unknown key type " + kind)
    for j in (pub_jwk, priv_jwk):
        j["kid"] = spec["kid"]
    return priv, pub_jwk, priv_jwk


def main():
    req = json.load(sys.stdin)
    keys, public, private = {}, [], []
    for spec in req.get("keys", []):
        priv, pub_jwk, priv_jwk = make_key(spec)
        keys[spec["kid"]] = priv
        public.append(pub_jwk)
        private.append(priv_jwk)
    tokens = {}
    for t in req.get("tokens", []):
        headers = dict(t.get("headers", {}))
        if t.get("kid") is not None:
            headers["kid"] = t["kid"]
        raw = t.get("raw")
        if raw == "none":
            tokens[t["name"]] = jwt.encode(t["claims"], None, algorithm="none", headers=headers)
        elif raw == "hs-with-public-pem":
            # The classic confusion attack: HS256 keyed with the RSA public key's PEM text.
            pem = keys[t["kid"]].public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            head = b64(json.dumps(dict(headers, alg="HS256")).encode())
            body = b64(json.dumps(t["claims"]).encode())
            sig = hmac.new(pem, (head + "." + body).encode(), hashlib.sha256).digest()
            tokens[t["name"]] = head + "." + body + "." + b64(sig)
        else:
            tokens[t["name"]] = jwt.encode(
                t["claims"], keys[t["kid_sign"] if "kid_sign" in t else t["kid"]],
                algorithm=t["alg"], headers=headers)
    verified = []
    for v in req.get("verify", []):
        try:
            key = jwt.PyJWK(v["jwk"]).key
            claims = jwt.decode(v["token"], key, algorithms=[v["alg"]],
                                options={"verify_aud": False, "verify_exp": False})
            header = jwt.get_unverified_header(v["token"])
            verified.append({"ok": True, "claims": claims, "header": header})
        except Exception as e:  # the test reports what PyJWT said
            verified.append({"ok": False, "error": repr(e)})
    json.dump({"public": {"keys": public}, "private": {"keys": private}, "tokens": tokens,
               "verified": verified}, sys.stdout)


if __name__ == "__main__":
    main()
