"""Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP), as every authenticator app
computes them: HMAC-SHA1, six digits, a 30-second step.

Codes of the step before and after the current one are accepted too, for clocks that drift
and for the seconds a person takes to type; the caller refuses any step up to the last one
accepted, so each code works once.
"""

import base64
import hashlib
import hmac
import secrets
import struct
import time
from urllib.parse import quote, urlencode

DIGITS = 6
STEP_SECONDS = 30
# Steps either side of now whose codes are accepted.
DRIFT_STEPS = 1
_SECRET_BYTES = 20  # 160 bits, the HMAC-SHA1 block RFC 4226 recommends


def new_secret() -> str:
    """A random secret, in the unpadded base32 authenticator apps read."""
    return base64.b32encode(secrets.token_bytes(_SECRET_BYTES)).decode().rstrip("=")


def _key(secret: str) -> bytes:
    return base64.b32decode(secret + "=" * (-len(secret) % 8))


def code_at(secret: str, step: int) -> str:
    """The code of time step `step` (RFC 4226 section 5.3's dynamic truncation)."""
    digest = hmac.new(_key(secret), struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    (number,) = struct.unpack(">I", digest[offset : offset + 4])
    return str((number & 0x7FFFFFFF) % 10**DIGITS).zfill(DIGITS)


def current_step(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // STEP_SECONDS)


def matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The step within the drift window whose code `code` is; None when there is none."""
    step = current_step(now)
    found = None
    # Every candidate is compared, in constant time each, so timing tells nothing.
    for candidate in range(step - DRIFT_STEPS, step + DRIFT_STEPS + 1):
        if hmac.compare_digest(code_at(secret, candidate), code):
            found = candidate
    return found


def provisioning_uri(secret: str, *, account: str, issuer: str) -> str:
    """The `otpauth://` URI an authenticator app reads (as a QR code, or pasted)."""
    label = quote(f"{issuer}:{account}", safe="@:")
    query = urlencode(
        {
            "secret": secret,
            "issuer": issuer,
            "algorithm": "SHA1",
            "digits": DIGITS,
            "period": STEP_SECONDS,
        }
    )
    return f"otpauth://totp/{label}?{query}"
