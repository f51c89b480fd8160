from app.core.errors import (
    BadRequest,
    BusinessRuleViolation,
    Conflict,
    Forbidden,
    NotFound,
    Unauthorized,
)


class InvalidCredentials(Unauthorized):
    """The one answer to a failed login: it never says whether the email exists."""

    type = "urn:problem-type:invalid-credentials"
    title = "Invalid credentials"
    detail = "Incorrect email or password."


class NotAuthenticated(Unauthorized):
    type = "urn:problem-type:not-authenticated"
    title = "Not authenticated"
    detail = "Send a bearer access token in the Authorization header."


class InvalidAccessToken(Unauthorized):
    type = "urn:problem-type:invalid-token"
    title = "Invalid token"
    detail = "The access token is invalid, expired or revoked."

    def __init__(self) -> None:
        super().__init__(headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


class InvalidRefreshToken(Unauthorized):
    type = "urn:problem-type:invalid-refresh-token"
    title = "Invalid refresh token"
    detail = "The refresh token is invalid, expired, spent or revoked."


class InsufficientScope(Forbidden):
    type = "urn:problem-type:insufficient-scope"
    title = "Insufficient scope"

    def __init__(self, missing: list[str]) -> None:
        needed = " ".join(missing)
        super().__init__(
            f"The access token lacks the scope(s): {needed}.",
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{needed}"'},
        )


class AdminRequired(Forbidden):
    type = "urn:problem-type:admin-required"
    title = "Administrator required"
    detail = "Only administrators may do this."


class WrongCurrentPassword(BadRequest):
    type = "urn:problem-type:wrong-current-password"
    title = "Wrong current password"
    detail = "The current password is not correct."


class EmailUnverified(Forbidden):
    type = "urn:problem-type:email-unverified"
    title = "Email not verified"
    detail = "Verify your email address first: POST /api/v1/users/me/verify-email sends a link."


class PasswordSessionRequired(Forbidden):
    """API keys act on resources; the credentials themselves need a signed-in person."""

    type = "urn:problem-type:password-session-required"
    title = "Password session required"
    detail = "Sign in with your password to do this; an API key cannot."


class ScopeNotAllowed(BusinessRuleViolation):
    type = "urn:problem-type:scope-not-allowed"
    title = "Scope not allowed"

    def __init__(self, scopes: list[str]) -> None:
        super().__init__(f"You cannot grant scopes you do not hold: {' '.join(scopes)}.")


class ApiKeyLimitReached(Conflict):
    type = "urn:problem-type:api-key-limit"
    title = "Too many API keys"

    def __init__(self, most: int) -> None:
        super().__init__(
            f"An account holds at most {most} live API keys: revoke one you no longer use first."
        )


class ApiKeyNotFound(NotFound):
    type = "urn:problem-type:api-key-not-found"
    title = "API key not found"
    detail = "You have no API key with this id."
