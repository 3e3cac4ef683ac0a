"""The keys of encryption at rest: rotation, key ids, keyed addresses, clear errors."""

from __future__ import annotations

import pytest

from durable_graph.encryption import KEY_ENV, OLD_KEYS_ENV, Keys
from durable_graph.errors import EncryptionKeyError

OLD = "o" * 32
NEW = "n" * 16


def test_no_key_means_no_encryption() -> None:
    assert Keys.from_env({}) is None


def test_a_new_key_reads_what_an_old_one_wrote_once_the_old_one_is_listed() -> None:
    old = Keys.from_env({KEY_ENV: OLD})
    assert old is not None
    secret = old.encrypt(b"the invoice of ACME")
    assert b"ACME" not in secret
    rotated = Keys.from_env({KEY_ENV: NEW, OLD_KEYS_ENV: f"{OLD}, {'x' * 24}"})
    assert rotated is not None
    assert rotated.decrypt(secret) == b"the invoice of ACME"
    assert not rotated.is_current(secret) and rotated.is_current(rotated.encrypt(b"x"))
    with pytest.raises(EncryptionKeyError, match=OLD_KEYS_ENV):
        Keys.from_env({KEY_ENV: NEW}).decrypt(secret)  # type: ignore[union-attr]


def test_encryption_is_randomized_but_addresses_are_stable_per_thread() -> None:
    keys = Keys(NEW.encode())
    assert keys.encrypt(b"same") != keys.encrypt(b"same")
    assert keys.address("t1", b"same") == keys.address("t1", b"same")
    assert keys.address("t1", b"same") != keys.address("t2", b"same")  # no equality across threads
    assert Keys(OLD.encode()).address("t1", b"same") != keys.address("t1", b"same")


def test_an_altered_ciphertext_is_refused() -> None:
    keys = Keys(NEW.encode())
    secret = bytearray(keys.encrypt(b"payload"))
    secret[-1] ^= 1
    with pytest.raises(EncryptionKeyError, match="altered"):
        keys.decrypt(bytes(secret))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({KEY_ENV: "short"}, f"{KEY_ENV} must be 16, 24 or 32 bytes long, not 5"),
        ({KEY_ENV: NEW, OLD_KEYS_ENV: "bad"}, f"a key of {OLD_KEYS_ENV} must be"),
        ({OLD_KEYS_ENV: OLD}, f"{KEY_ENV}, the key to write with, is not"),
    ],
)
def test_bad_keys_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(EncryptionKeyError, match=message):
        Keys.from_env(env)
