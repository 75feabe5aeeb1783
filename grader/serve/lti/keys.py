"""The tool's signing keys: RSA 2048, made on first start, rotatable.

Each key is a PEM file ``.gradelab/lti/keys/<kid>.pem`` (0600); the newest signs, and the JWKS
lists the newest two, so a platform that cached the old keyset still verifies assertions signed
just before a rotation. The key ids are random, never derived from the class.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from jwt.algorithms import RSAAlgorithm

from grader.serve.lti.config import lti_dir

KEYS_DIR = "keys"
PUBLISHED = 2


class ToolKeys:
    def __init__(self, state_dir: Path) -> None:
        self.folder = lti_dir(state_dir) / KEYS_DIR
        self.folder.mkdir(exist_ok=True, mode=0o700)

    def _kids(self) -> list[str]:
        """Key ids, newest first (by the file's time, then name)."""
        found = [p for p in self.folder.glob("*.pem") if not p.is_symlink()]
        found.sort(key=lambda p: (p.stat().st_mtime_ns, p.name), reverse=True)
        return [p.stem for p in found]

    def rotate(self) -> str:
        """A new key, which signs from now on; its id."""
        kid = secrets.token_hex(8)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        fd = os.open(self.folder / f"{kid}.pem", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        return kid

    def ensure(self) -> str:
        kids = self._kids()
        return kids[0] if kids else self.rotate()

    def _private(self, kid: str) -> RSAPrivateKey:
        fd = os.open(self.folder / f"{kid}.pem", os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as fh:
            key = serialization.load_pem_private_key(fh.read(), password=None)
        assert isinstance(key, RSAPrivateKey)
        return key

    def signing(self) -> tuple[str, RSAPrivateKey]:
        kid = self.ensure()
        return kid, self._private(kid)

    def jwks(self) -> dict[str, Any]:
        self.ensure()
        keys = []
        for kid in self._kids()[:PUBLISHED]:
            jwk = json.loads(RSAAlgorithm.to_jwk(self._private(kid).public_key()))
            keys.append({**jwk, "kid": kid, "alg": "RS256", "use": "sig"})
        return {"keys": keys}
