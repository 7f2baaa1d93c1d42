#!/usr/bin/python3
"""An independent check of Rampart's evidence with third-party code (Debian's python3-cbor2 and
python3-cryptography): decode the COSE_Sign1, rebuild its Sig_structure, verify the ES256
signature with the given DER public key, and print the claims as JSON.
Usage: check-eat.py TOKEN.cbor PUBKEY.der   (exit 0: valid; 1: not)"""
import json
import sys

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def main():
    token = open(sys.argv[1], "rb").read()
    key = serialization.load_der_public_key(open(sys.argv[2], "rb").read())
    msg = cbor2.loads(token)
    if isinstance(msg, cbor2.CBORTag):
        if msg.tag != 18:
            sys.exit("not a COSE_Sign1 tag: %d" % msg.tag)
        msg = msg.value
    protected, _unprotected, payload, sig = msg
    if cbor2.loads(protected) != {1: -7}:
        sys.exit("protected header is not {1: -7}")
    if len(sig) != 64:
        sys.exit("ES256 signature is not 64 bytes")
    tbs = cbor2.dumps(["Signature1", protected, b"", payload])
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    try:
        key.verify(der, tbs, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        print("signature does not verify", file=sys.stderr)
        sys.exit(1)
    claims = cbor2.loads(payload)

    def plain(v):
        if isinstance(v, bytes):
            return v.hex()
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, list):
            return [plain(x) for x in v]
        return v

    print(json.dumps(plain(claims), indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
