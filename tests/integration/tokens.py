"""Test tokens: an RSA and an EC signing key made per test session, their
JWKS written to a file the API reads (AUTH_JWKS_FILE), and compact JWS
minted with any header and claims, including the broken ones the auth tests
need. The keys live in a temporary directory and never leave the run."""

import base64
import json
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ISSUER = "https://order-service.local"
AUDIENCE = "order-api"
ALL_SCOPES = "orders/read orders/write orders/admin"


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int(n):
    return b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))


class Keys:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="order-auth-"))
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.jwks_path = self.dir / "jwks.json"
        self.publish(["rsa-1", "ec-1"])

    def jwk(self, kid):
        if kid == "ec-1":
            n = self.ec.public_key().public_numbers()
            return {"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
                    "x": b64(n.x.to_bytes(32, "big")), "y": b64(n.y.to_bytes(32, "big"))}
        key = self.rsa if kid == "rsa-1" else self.rotated
        n = key.public_key().public_numbers()
        return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                "n": _int(n.n), "e": _int(n.e)}

    def publish(self, kids):
        self.jwks_path.write_text(json.dumps({"keys": [self.jwk(k) for k in kids]}))

    def rsa_public_pem(self):
        return self.rsa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def mint(self, sub="c-123", scope="orders/read orders/write", ttl=3600, kid="rsa-1",
             alg=None, claims=None, header=None, raw_header=None, raw_payload=None,
             hmac_secret=None, drop=()):
        now = int(time.time())
        alg = alg or ("ES256" if kid == "ec-1" else "RS256")
        h = {"alg": alg, "typ": "JWT", "kid": kid}
        h.update(header or {})
        p = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + ttl,
             "scope": scope, "token_use": "access"}
        p.update(claims or {})
        for k in drop:
            p.pop(k, None)
            h.pop(k, None)
        hs = raw_header if raw_header is not None else json.dumps(h)
        ps = raw_payload if raw_payload is not None else json.dumps(p)
        signing = f"{b64(hs.encode())}.{b64(ps.encode())}".encode()
        if alg == "none":
            sig = b""
        elif alg == "HS256":
            m = hmac.HMAC(hmac_secret, hashes.SHA256())
            m.update(signing)
            sig = m.finalize()
        elif alg == "ES256":
            r, s = decode_dss_signature(self.ec.sign(signing, ec.ECDSA(hashes.SHA256())))
            sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        else:
            key = self.rotated if kid == "rsa-2" else self.rsa
            sig = key.sign(signing, padding.PKCS1v15(), hashes.SHA256())
        return f"{signing.decode()}.{b64(sig)}"


KEYS = Keys()


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def admin_headers():
    """What every test that is not about auth sends: a valid admin token."""
    return bearer(KEYS.mint(sub="tests", scope=ALL_SCOPES))
