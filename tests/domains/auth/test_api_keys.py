"""API keys as the auth domain mints them, without HTTP."""

from app.domains.auth.api_keys import API_KEY_PREFIX, PREFIX_LENGTH, mint_api_key


def test_a_minted_key_is_the_prefix_and_enough_randomness_to_be_unguessable() -> None:
    key = mint_api_key()
    assert key.startswith(API_KEY_PREFIX)
    body = key.removeprefix(API_KEY_PREFIX)
    # 320 random bits in url-safe base64: nothing else in a key.
    assert len(body) >= 43
    assert body.replace("-", "").replace("_", "").isalnum()
    assert body.isascii()


def test_keys_are_told_apart_by_their_listed_prefix() -> None:
    assert len({mint_api_key()[:PREFIX_LENGTH] for _ in range(200)}) == 200
