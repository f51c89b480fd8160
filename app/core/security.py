"""Password hashing and signed access tokens.

Hashing is CPU-bound (Argon2id takes tens of milliseconds by design), so it runs in worker
threads behind a limiter: a burst of logins queues for hashing capacity instead of
stalling the event loop that serves every other request.
"""

import base64
import hashlib
import hmac
import math
import os
import re
import secrets
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import bcrypt
import jwt
from anyio import CapacityLimiter
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

from app.core.config import Settings

ACCESS_TOKEN_TYPE = "access"  # noqa: S105 - a claim value, not a secret
# Verified access tokens remembered per worker (about 2.5 MB at most).
VERIFIED_TOKENS_KEPT = 4096
# bcrypt reads at most this many bytes of a password; bcrypt 5 raises on longer ones.
BCRYPT_MAX_PASSWORD_BYTES = 72


class LegacyBcryptHasher(BcryptHasher):
    """Verifies the bcrypt hashes of earlier releases; a longer password simply fails.

    Earlier releases truncated passwords to 72 bytes without saying so, so accepting the
    first 72 bytes would accept passwords that were never set. The refusal still costs one
    bcrypt computation against the stored hash: it takes as long as any wrong password, so
    timing does not tell which accounts still carry a bcrypt hash.
    """

    def verify(self, password: str | bytes, hash: str | bytes) -> bool:
        secret = password.encode() if isinstance(password, str) else password
        if len(secret) <= BCRYPT_MAX_PASSWORD_BYTES:
            return super().verify(password, hash)
        stored = hash.encode() if isinstance(hash, str) else hash
        bcrypt.checkpw(secret[:BCRYPT_MAX_PASSWORD_BYTES], stored)
        return False


def unverifiable_bcrypt_hash(rounds: int) -> str:
    """A well-formed bcrypt hash no password matches, made without computing one: checking a
    password against it costs exactly what checking against a real hash of `rounds` does."""
    digest = "".join(secrets.choice(_BCRYPT_ALPHABET) for _ in range(_BCRYPT_DIGEST_LENGTH))
    return bcrypt.gensalt(rounds).decode() + digest


_BCRYPT_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_BCRYPT_DIGEST_LENGTH = 31


class PasswordHasher:
    """Argon2id for new hashes; the bcrypt hashes of earlier releases still verify (while
    PASSWORD_HASH_BCRYPT_ROUNDS is not 0) and are upgraded on login.

    Every check does the same work, whatever the account stores or whether there is one:
    one Argon2id verification and, while bcrypt is accepted, one bcrypt verification, each
    against the stored hash when it is of that kind and against a dummy of that kind
    otherwise. An unknown email would else cost one Argon2id check (~25 ms) where an account
    still on bcrypt costs a bcrypt one (~250 ms at 12 rounds), and timing would tell which
    addresses have such accounts.
    """

    def __init__(self, settings: Settings) -> None:
        self._argon2 = Argon2Hasher(
            time_cost=settings.password_hash_iterations,
            memory_cost=settings.password_hash_memory_kib,
            parallelism=1,
        )
        rounds = settings.password_hash_bcrypt_rounds
        self._bcrypt = LegacyBcryptHasher(rounds=rounds) if rounds else None
        concurrency = settings.password_hash_concurrency or max(1, (os.cpu_count() or 2) - 1)
        self._limiter = CapacityLimiter(concurrency)
        self._dummy_argon2 = self._argon2.hash(secrets.token_urlsafe(16))
        self._dummy_bcrypt = unverifiable_bcrypt_hash(rounds) if rounds else ""

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self._argon2.hash, password, limiter=self._limiter)

    async def verify(self, password: str, hashed: str | None) -> tuple[bool, str | None]:
        """Check a password against a stored hash (None: no account, which never matches);
        the second value is a replacement hash when one is due."""
        return await anyio.to_thread.run_sync(self._verify, password, hashed, limiter=self._limiter)

    def _verify(self, password: str, hashed: str | None) -> tuple[bool, str | None]:
        stored = hashed or ""
        current = self._argon2.identify(stored) if stored else False
        # Both checks always run; only the one against the stored hash can succeed.
        valid = self._argon2.verify(password, stored if current else self._dummy_argon2)
        if current:
            renew = valid and self._argon2.check_needs_rehash(stored)
            self._check_a_dummy_bcrypt(password)
            return valid, self._argon2.hash(password) if renew else None
        if self._bcrypt is None or not stored or not self._bcrypt.identify(stored):
            self._check_a_dummy_bcrypt(password)
            return False, None
        if self._bcrypt.verify(password, stored):
            return True, self._argon2.hash(password)
        return False, None

    def _check_a_dummy_bcrypt(self, password: str) -> None:
        if self._bcrypt is not None:
            self._bcrypt.verify(password, self._dummy_bcrypt)


class InvalidToken(Exception):
    """The token is malformed, forged, expired, or not an access token."""


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: int
    session_id: str
    scopes: frozenset[str]
    expires_at: datetime


def key_id(secret: str) -> str:
    """A public, stable identifier of a signing key, so rotation needs no extra setting."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


# Claims a correctly signed token may still carry out of range (a token signed with a leaked
# or rotated key, or issued by a buggy release) are bounded before anything uses them: user
# ids are positive BIGINTs, session ids are what `issue` writes, times are datetimes.
_USER_ID = re.compile(r"[1-9][0-9]{0,18}")
_MAX_USER_ID = 2**63 - 1
_SESSION_ID = re.compile(r"[0-9a-f]{32}")
_MAX_TIMESTAMP = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()


def _user_id(claims: dict[str, Any]) -> int:
    sub = claims["sub"]
    if not isinstance(sub, str) or not _USER_ID.fullmatch(sub) or int(sub) > _MAX_USER_ID:
        raise InvalidToken("sub is not a user id")
    return int(sub)


def _session_id(claims: dict[str, Any]) -> str:
    sid = claims["sid"]
    if not isinstance(sid, str) or not _SESSION_ID.fullmatch(sid):
        raise InvalidToken("sid is not a session id")
    return sid


def _check_times(claims: dict[str, Any]) -> datetime:
    """The expiry, once every time claim is a finite number of seconds in datetime's range."""
    for name in ("exp", "iat", "nbf"):
        value = claims[name]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not 0 <= value <= _MAX_TIMESTAMP
        ):
            raise InvalidToken(f"{name} is not a time")
    return datetime.fromtimestamp(claims["exp"], UTC)


class TokenCodec:
    """Issues and verifies access tokens as RFC 8725 asks: pinned algorithm, typed token,
    required claims, issuer and audience checked, keys selected by `kid`."""

    _REQUIRED = ("exp", "iat", "nbf", "sub", "jti", "iss", "aud", "sid", "typ")

    def __init__(self, settings: Settings) -> None:
        current = settings.secret_key.get_secret_value()
        self._current_kid = key_id(current)
        self._keys = {
            key_id(old.get_secret_value()): old.get_secret_value()
            for old in settings.previous_secret_keys
        }
        self._keys[self._current_kid] = current
        self._algorithm = settings.jwt_algorithm
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self.lifetime = timedelta(minutes=settings.access_token_expire_minutes)
        # Tokens already verified, by their exact text, until they expire: a client sends
        # the same token with every request, and checking its signature again each time
        # costs more than the database read that follows. Only a token that passed every
        # check is ever kept, so a forged or altered one never matches an entry.
        self._verified: OrderedDict[str, AccessClaims] = OrderedDict()

    def issue(self, *, user_id: int, session_id: str, scopes: frozenset[str]) -> str:
        now = datetime.now(UTC)
        claims: dict[str, Any] = {
            "sub": str(user_id),
            "sid": session_id,
            "typ": ACCESS_TOKEN_TYPE,
            "scope": " ".join(sorted(scopes)),
            "iat": now,
            "nbf": now,
            "exp": now + self.lifetime,
            "jti": uuid.uuid4().hex,
            "iss": self._issuer,
            "aud": self._audience,
        }
        return jwt.encode(
            claims,
            self._keys[self._current_kid],
            algorithm=self._algorithm,
            headers={"kid": self._current_kid, "typ": "at+jwt"},
        )

    def verify(self, token: str) -> AccessClaims:
        known = self._verified.get(token)
        if known is not None and datetime.now(UTC) < known.expires_at:
            self._verified.move_to_end(token)
            return known
        claims = self._decode(token)
        self._verified[token] = claims
        if len(self._verified) > VERIFIED_TOKENS_KEPT:
            self._verified.popitem(last=False)
        return claims

    def _decode(self, token: str) -> AccessClaims:
        try:
            header = jwt.get_unverified_header(token)
            key = self._keys.get(str(header.get("kid")))
            if key is None:
                raise InvalidToken("unknown signing key")
            claims = jwt.decode(
                token,
                key,
                algorithms=[self._algorithm],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": list(self._REQUIRED)},
            )
            if claims["typ"] != ACCESS_TOKEN_TYPE:
                raise InvalidToken("not an access token")
            return AccessClaims(
                user_id=_user_id(claims),
                session_id=_session_id(claims),
                scopes=frozenset(str(claims.get("scope", "")).split()),
                expires_at=_check_times(claims),
            )
        # PyJWT converts time claims with int(), which overflows on an infinite one.
        except (jwt.PyJWTError, ValueError, TypeError, OverflowError) as error:
            raise InvalidToken(str(error)) from error


def new_opaque_token() -> str:
    return secrets.token_urlsafe(32)


def fingerprint(token: str) -> str:
    """How opaque tokens are stored: a leaked table holds nothing that can be presented."""
    return hashlib.sha256(token.encode()).hexdigest()


class UndecryptableSecret(Exception):
    """A stored secret that no configured key opens: its key was dropped from
    PREVIOUS_SECRET_KEYS, or the stored text was altered."""


class SecretBox:
    """Encrypts small secrets stored at rest (TOTP secrets) with AES-256-GCM.

    The key is derived from SECRET_KEY for this purpose alone, so it is never also a key
    that signs tokens; a sealed value names the key that sealed it (`key_id`), and keys in
    PREVIOUS_SECRET_KEYS still open what was sealed before a rotation. `context` is bound to
    the ciphertext (the owner's id), so a sealed value copied to another row does not open.
    """

    _NONCE_BYTES = 12

    def __init__(self, secret: str, previous: list[str] | None = None) -> None:
        self._current = key_id(secret)
        self._keys = {key_id(old): self._derive(old) for old in previous or []}
        self._keys[self._current] = self._derive(secret)

    @classmethod
    def from_settings(cls, settings: Settings) -> "SecretBox":
        return cls(
            settings.secret_key.get_secret_value(),
            [old.get_secret_value() for old in settings.previous_secret_keys],
        )

    @staticmethod
    def _derive(secret: str) -> AESGCM:
        return AESGCM(hmac.new(secret.encode(), b"secrets-at-rest", hashlib.sha256).digest())

    def seal(self, plaintext: str, context: str) -> str:
        nonce = secrets.token_bytes(self._NONCE_BYTES)
        sealed = self._keys[self._current].encrypt(nonce, plaintext.encode(), context.encode())
        return f"{self._current}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, sealed: str, context: str) -> str:
        kid, _, body = sealed.partition(".")
        key = self._keys.get(kid)
        if key is None:
            raise UndecryptableSecret(f"sealed with key {kid}, which is no longer configured")
        try:
            raw = base64.urlsafe_b64decode(body)
            plain = key.decrypt(
                raw[: self._NONCE_BYTES], raw[self._NONCE_BYTES :], context.encode()
            )
        except (InvalidTag, ValueError) as error:
            raise UndecryptableSecret("the sealed value does not open with its key") from error
        return plain.decode()

    def needs_resealing(self, sealed: str) -> bool:
        """Whether `sealed` was sealed with a key other than the current one."""
        return not sealed.startswith(f"{self._current}.")
