"""Encryption at rest: AES-GCM keys from ``LANGGRAPH_AES_KEY``, older keys for rotation, and keyed
addresses for content-addressed list items.

- ``LANGGRAPH_AES_KEY`` (LangGraph's convention: a string of 16, 24 or 32 characters, used as the
  key's bytes) is the key that encrypts every new write.
- ``DURABLE_GRAPH_OLD_AES_KEYS``: older keys, comma-separated, still accepted for reading, so a key
  can be rotated without downtime; ``durable-graph reencrypt`` rewrites threads under the newest key.

A ciphertext is ``key id (4 bytes) | nonce (12) | AES-GCM ciphertext and tag``: the key id (an
HMAC of a constant under the key) names the key that decrypts it and says nothing about the key.

A list item is addressed by a BLAKE2b keyed with a key derived from the newest key, over the thread
id and the item's plaintext: an item repeated within a thread is stored once, but a reader of the
database without the key can neither test a guess of an item's content nor see that two threads
hold the same item.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping, Sequence

from durable_graph.errors import EncryptionKeyError, MissingDependencyError

KEY_ENV = "LANGGRAPH_AES_KEY"
OLD_KEYS_ENV = "DURABLE_GRAPH_OLD_AES_KEYS"
KEY_ID_BYTES = 4
NONCE_BYTES = 12
ADDRESS_BYTES = 16
_KEY_LENGTHS = (16, 24, 32)


def _key_id(key: bytes) -> bytes:
    return hmac.new(key, b"durable-graph key id", hashlib.sha256).digest()[:KEY_ID_BYTES]


def _parse_key(text: str, where: str) -> bytes:
    key = text.encode()
    if len(key) not in _KEY_LENGTHS:
        raise EncryptionKeyError(f"{where} must be 16, 24 or 32 bytes long, not {len(key)}")
    return key


class Keys:
    """The keys of encryption at rest: the newest encrypts, every one decrypts what it encrypted."""

    def __init__(self, current: bytes, older: Sequence[bytes] = ()) -> None:
        try:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        except ImportError as exc:
            raise MissingDependencyError(
                "encryption at rest needs the 'encryption' extra: pip install 'durable-graph[encryption]'"
            ) from exc
        for key in (current, *older):
            if len(key) not in _KEY_LENGTHS:
                raise EncryptionKeyError(f"an AES key must be 16, 24 or 32 bytes long, not {len(key)}")
        self.current_id = _key_id(current)
        self._ciphers = {_key_id(key): AESGCM(key) for key in (*reversed(older), current)}
        self._current = self._ciphers[self.current_id]
        address_key = hmac.new(current, b"durable-graph item address", hashlib.sha256).digest()
        self._address = hashlib.blake2b(key=address_key, digest_size=ADDRESS_BYTES)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Keys | None:
        """The keys named by ``LANGGRAPH_AES_KEY`` and ``DURABLE_GRAPH_OLD_AES_KEYS``; None when the
        first is not set (nothing is encrypted)."""
        env = os.environ if environ is None else environ
        current = env.get(KEY_ENV)
        if not current:
            if env.get(OLD_KEYS_ENV):
                message = f"{OLD_KEYS_ENV} is set but {KEY_ENV}, the key to write with, is not"
                raise EncryptionKeyError(message)
            return None
        older = [
            _parse_key(text.strip(), f"a key of {OLD_KEYS_ENV}")
            for text in env.get(OLD_KEYS_ENV, "").split(",")
            if text.strip()
        ]
        return cls(_parse_key(current, KEY_ENV), older)

    def encrypt(self, plaintext: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return self.current_id + nonce + self._current.encrypt(nonce, plaintext, None)

    def decrypt(self, ciphertext: bytes) -> bytes:
        """The plaintext, or ``EncryptionKeyError`` when no key of these decrypts it (raised as such
        so that callers can name the thread and checkpoint)."""
        from cryptography.exceptions import InvalidTag

        key_id = ciphertext[:KEY_ID_BYTES]
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise EncryptionKeyError(
                f"encrypted with a key that is not given (key id {key_id.hex()}); set {KEY_ENV} "
                f"or add the old key to {OLD_KEYS_ENV}"
            )
        nonce = ciphertext[KEY_ID_BYTES : KEY_ID_BYTES + NONCE_BYTES]
        try:
            return cipher.decrypt(nonce, ciphertext[KEY_ID_BYTES + NONCE_BYTES :], None)
        except InvalidTag as exc:
            raise EncryptionKeyError("the ciphertext does not authenticate: it was altered") from exc

    def is_current(self, ciphertext: bytes) -> bool:
        """Whether ``ciphertext`` was encrypted with the newest key."""
        return ciphertext[:KEY_ID_BYTES] == self.current_id

    def address(self, thread_id: str, data: bytes) -> bytes:
        """The keyed address of an item of ``thread_id`` whose plaintext is ``data``."""
        hasher = self._address.copy()
        hasher.update(thread_id.encode() + b"\0")
        hasher.update(data)
        return hasher.digest()
