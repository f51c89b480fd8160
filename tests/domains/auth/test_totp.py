"""TOTP as RFC 6238 defines it, and the sealing of secrets at rest."""

import base64
from urllib.parse import parse_qs, urlsplit

import pytest

from app.core.security import SecretBox, UndecryptableSecret
from app.domains.auth import totp

# RFC 6238 appendix B: the SHA-1 secret and eight-digit codes; six digits are their tail.
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()
RFC_VECTORS = {
    59: "94287082",
    1111111109: "07081804",
    1111111111: "14050471",
    1234567890: "89005924",
    2000000000: "69279037",
    20000000000: "65353130",
}


@pytest.mark.parametrize(("when", "code"), RFC_VECTORS.items())
def test_codes_match_the_rfc_test_vectors(when: int, code: str) -> None:
    assert totp.code_at(RFC_SECRET, totp.current_step(when)) == code[-6:]


def test_a_code_is_accepted_one_step_either_side_and_no_further() -> None:
    now = 1_700_000_000.0
    step = totp.current_step(now)
    for drift in (-1, 0, 1):
        code = totp.code_at(RFC_SECRET, step + drift)
        assert totp.matching_step(RFC_SECRET, code, now) == step + drift
    for drift in (-2, 2):
        assert totp.matching_step(RFC_SECRET, totp.code_at(RFC_SECRET, step + drift), now) is None


def test_new_secrets_are_random_160_bit_base32() -> None:
    secrets = {totp.new_secret() for _ in range(20)}
    assert len(secrets) == 20
    assert all(len(base64.b32decode(s)) == 20 for s in secrets)


def test_the_provisioning_uri_is_what_authenticator_apps_read() -> None:
    uri = totp.provisioning_uri("JBSWY3DPEHPK3PXP", account="ada@example.com", issuer="Shop")
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc, parts.path) == ("otpauth", "totp", "/Shop:ada@example.com")
    assert parse_qs(parts.query) == {
        "secret": ["JBSWY3DPEHPK3PXP"],
        "issuer": ["Shop"],
        "algorithm": ["SHA1"],
        "digits": ["6"],
        "period": ["30"],
    }


def test_a_sealed_secret_holds_no_clear_text_and_opens_only_for_its_owner() -> None:
    box = SecretBox("a-long-enough-secret-key-for-tests-0123456789")
    sealed = box.seal("JBSWY3DPEHPK3PXP", "totp:1")
    assert "JBSWY3DPEHPK3PXP" not in sealed
    assert box.seal("JBSWY3DPEHPK3PXP", "totp:1") != sealed
    assert box.open(sealed, "totp:1") == "JBSWY3DPEHPK3PXP"
    with pytest.raises(UndecryptableSecret):
        box.open(sealed, "totp:2")
    kid, _, body = sealed.partition(".")
    # A character inside the body carries six bits of ciphertext; the last ones may be padding.
    middle = len(body) // 2
    altered = body[:middle] + ("A" if body[middle] != "A" else "B") + body[middle + 1 :]
    with pytest.raises(UndecryptableSecret):
        box.open(f"{kid}.{altered}", "totp:1")
    with pytest.raises(UndecryptableSecret):
        box.open(f"{kid}.{body[:-3]}", "totp:1")


def test_a_previous_key_still_opens_and_a_dropped_one_does_not() -> None:
    old = SecretBox("the-old-secret-key-0123456789-0123456789")
    sealed = old.seal("JBSWY3DPEHPK3PXP", "totp:7")
    rotated = SecretBox(
        "the-new-secret-key-0123456789-0123456789", ["the-old-secret-key-0123456789-0123456789"]
    )
    assert rotated.open(sealed, "totp:7") == "JBSWY3DPEHPK3PXP"
    assert rotated.needs_resealing(sealed)
    assert not rotated.needs_resealing(rotated.seal("x", "totp:7"))
    with pytest.raises(UndecryptableSecret):
        SecretBox("the-new-secret-key-0123456789-0123456789").open(sealed, "totp:7")
