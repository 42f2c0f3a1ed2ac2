"""argon2id password hashing (OWASP minimum or stronger), with rehash on login when weaker."""

from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

# m=19 MiB, t=2, p=1 is OWASP's floor for argon2id; we go above it on memory.
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024 * 2, parallelism=1, type=Type.ID)

# Verified against when the email is unknown, so both paths cost the same time.
_DUMMY_HASH = HASHER.hash("an unknown user's password is never this one")

MIN_LENGTH = 8
MAX_LENGTH = 256


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        return HASHER.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return HASHER.check_needs_rehash(stored_hash)
