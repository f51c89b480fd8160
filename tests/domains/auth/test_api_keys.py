"""API keys as the auth domain mints and recognises them, without HTTP."""

import pytest

from app.domains.auth.api_keys import API_KEY_PREFIX, PREFIX_LENGTH, mint_api_key, minted_here

SIGNING_KEY = "the-current-signing-key-for-api-keys-0123456789"
OLD_SIGNING_KEY = "the-previous-signing-key-for-api-keys-987654321"


def test_a_minted_key_is_the_prefix_and_enough_randomness_to_be_unguessable() -> None:
    key = mint_api_key(SIGNING_KEY)
    assert key.startswith(API_KEY_PREFIX)
    assert len(key) - len(API_KEY_PREFIX) >= 32
    assert len({mint_api_key(SIGNING_KEY)[:PREFIX_LENGTH] for _ in range(50)}) == 50


def test_a_key_is_recognised_under_the_signing_key_that_minted_it_or_a_previous_one() -> None:
    key = mint_api_key(OLD_SIGNING_KEY)
    assert minted_here(key, [SIGNING_KEY, OLD_SIGNING_KEY])
    assert not minted_here(key, [SIGNING_KEY])


@pytest.mark.parametrize(
    "tamper",
    [
        lambda key: key[:-1] + ("A" if key[-1] != "A" else "B"),  # another tag
        lambda key: key[:20] + ("x" if key[20] != "x" else "y") + key[21:],  # another body
        lambda key: key + "A",  # too long
        lambda key: key[:-1],  # too short
    ],
)
def test_an_altered_or_invented_key_is_not_recognised(tamper: object) -> None:
    key = mint_api_key(SIGNING_KEY)
    assert callable(tamper)
    assert not minted_here(tamper(key), [SIGNING_KEY])
