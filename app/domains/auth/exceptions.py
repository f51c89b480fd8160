from typing import ClassVar

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
    # RFC 6749 5.2's code, for the token endpoint's OAuth2 clients.
    oauth_error: ClassVar[str] = "invalid_grant"


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
    oauth_error: ClassVar[str] = "invalid_grant"


class InvalidScope(BadRequest):
    type = "urn:problem-type:invalid-scope"
    title = "Invalid scope"
    oauth_error: ClassVar[str] = "invalid_scope"

    def __init__(self, scopes: list[str]) -> None:
        super().__init__(f"The session was not granted the scope(s): {' '.join(scopes)}.")


class MfaRequired(Unauthorized):
    """The password was right and the account has two-factor login on: the body's
    `mfa_token`, with a code, completes the login at /auth/token/mfa."""

    type = "urn:problem-type:mfa-required"
    title = "Two-factor code required"
    detail = (
        "Send the mfa_token with a code from your authenticator app (or a backup code) "
        "to POST /api/v1/auth/token/mfa."
    )
    oauth_error: ClassVar[str] = "invalid_grant"

    def __init__(self, mfa_token: str, expires_in: int) -> None:
        # It carries a credential, so it is never stored, as a token response is not.
        never_store = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        super().__init__(headers={"WWW-Authenticate": "Bearer", **never_store})
        self.extensions = {"mfa_token": mfa_token, "mfa_token_expires_in": expires_in}


class InvalidMfaToken(Unauthorized):
    type = "urn:problem-type:invalid-mfa-token"
    title = "Invalid MFA token"
    detail = "The mfa_token is invalid, expired, used or out of attempts: log in again."
    oauth_error: ClassVar[str] = "invalid_grant"


class WrongMfaCode(Unauthorized):
    type = "urn:problem-type:invalid-mfa-code"
    title = "Wrong code"
    detail = "The code is wrong or already used."
    oauth_error: ClassVar[str] = "invalid_grant"


class InvalidCode(BadRequest):
    type = "urn:problem-type:invalid-code"
    title = "Invalid code"
    detail = "The code is wrong, expired or already used."


class MfaAlreadyEnabled(Conflict):
    type = "urn:problem-type:mfa-already-enabled"
    title = "Two-factor login already on"
    detail = "Two-factor login is already on; turn it off first to enrol a new authenticator."


class MfaNotEnabled(Conflict):
    type = "urn:problem-type:mfa-not-enabled"
    title = "Two-factor login is off"
    detail = "Two-factor login is not on for this account."


class MfaNotEnrolling(Conflict):
    type = "urn:problem-type:mfa-not-enrolling"
    title = "No enrolment to confirm"
    detail = "Start with POST /api/v1/users/me/mfa/totp, then confirm a code from it."


class SessionNotFound(NotFound):
    type = "urn:problem-type:session-not-found"
    title = "Session not found"
    detail = "You have no live session with this id."


class LastAdmin(Conflict):
    type = "urn:problem-type:last-admin"
    title = "Last administrator"
    detail = "You are the last active administrator: make someone else one first."


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
