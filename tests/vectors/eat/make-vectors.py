#!/usr/bin/python3
"""Make EAT evidence vectors with third-party code (Debian's python3-cbor2 and
python3-cryptography), independently of Rampart's encoder: what a standard COSE/CBOR tool
produces, Rampart must accept. Run from this directory; the outputs are committed."""
import hashlib

import cbor2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

key = ec.generate_private_key(ec.SECP256R1())
spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                     serialization.PublicFormat.SubjectPublicKeyInfo)
device_id = hashlib.sha256(spki).digest()

claims = {
    6: 1764000000,                                   # iat
    10: bytes(range(32)),                            # nonce
    256: b"\x01" + device_id,                        # ueid (RAND)
    263: 2,                                          # dbgstat: disabled since boot
    265: "tag:rampart.dev,2026:eat-v1",              # eat_profile
    267: 5,                                          # bootcount
    -70001: [                                        # components
        {1: "bootloader", 2: "1.0.0+0", 3: bytes([0xaa] * 32), 4: bytes([0xbb] * 32)},
        {1: "app.sensor", 2: "1.2.3+4", 3: bytes([0xcc] * 32), 4: bytes([0xdd] * 32), 5: 7},
    ],
    -70002: bytes([0xee] * 32),                      # measurement register
    "vendor-note": "claims a verifier does not know are ignored",
    999: [1, {2: 3}],
}
payload = cbor2.dumps(claims)
protected = cbor2.dumps({1: -7})
tbs = cbor2.dumps(["Signature1", protected, b"", payload])
r, s = decode_dss_signature(key.sign(tbs, ec.ECDSA(hashes.SHA256())))
sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
token = cbor2.dumps(cbor2.CBORTag(18, [protected, {}, payload, sig]))

open("evidence.cbor", "wb").write(token)
open("evidence-key.der", "wb").write(spki)
open("evidence-device-id.txt", "w").write(device_id.hex() + "\n")
