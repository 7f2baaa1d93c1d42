#!/usr/bin/python3
"""Make evidence (a COSE_Sign1 EAT, as docs/protocol.md describes it) with third-party code
(Debian's python3-cbor2 and python3-cryptography), signed by a device's key, with the claims a
test needs: a debug status, components with or without a security counter, a register or none.
So the service's appraisal can be tested on evidence no agent on the test machine would make.
Usage: make-eat.py --key IDENTITY.pem --nonce HEX --out FILE [--debug N] [--boot-count N]
         [--component NAME:VERSION:DIGEST_HEX[:COUNTER]]... [--no-register | --register HEX]
The register, unless given or left out, is the chain of the components' digests, as measured:
R = SHA-256(R || digest), from 32 zero bytes."""
import argparse
import hashlib
import time

import cbor2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def component(text):
    parts = text.split(":")
    if len(parts) not in (3, 4) or len(bytes.fromhex(parts[2])) != 32:
        raise argparse.ArgumentTypeError("NAME:VERSION:DIGEST_HEX[:COUNTER]")
    c = {1: parts[0], 2: parts[1], 3: bytes.fromhex(parts[2]), 4: bytes(32)}
    if len(parts) == 4:
        c[5] = int(parts[3])
    return c


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--key", required=True)
    p.add_argument("--nonce", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--debug", type=int, default=2)  # disabled since boot
    p.add_argument("--boot-count", type=int, default=1)
    p.add_argument("--component", type=component, action="append", default=[])
    p.add_argument("--no-register", action="store_true")
    p.add_argument("--register")
    a = p.parse_args()

    key = serialization.load_pem_private_key(open(a.key, "rb").read(), password=None)
    spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    claims = {
        6: int(time.time()),
        10: bytes.fromhex(a.nonce),
        256: b"\x01" + hashlib.sha256(spki).digest(),
        263: a.debug,
        265: "tag:rampart.dev,2026:eat-v1",
        267: a.boot_count,
    }
    if a.component:
        claims[-70001] = a.component
    if a.register:
        claims[-70002] = bytes.fromhex(a.register)
    elif not a.no_register:
        reg = bytes(32)
        for c in a.component:
            reg = hashlib.sha256(reg + c[3]).digest()
        claims[-70002] = reg
    payload = cbor2.dumps(claims)
    protected = cbor2.dumps({1: -7})
    tbs = cbor2.dumps(["Signature1", protected, b"", payload])
    r, s = decode_dss_signature(key.sign(tbs, ec.ECDSA(hashes.SHA256())))
    sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    open(a.out, "wb").write(cbor2.dumps(cbor2.CBORTag(18, [protected, {}, payload, sig])))


if __name__ == "__main__":
    main()
