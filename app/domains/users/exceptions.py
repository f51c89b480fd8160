from app.core.errors import BadRequest, Conflict, NotFound


class EmailTaken(Conflict):
    type = "urn:problem-type:email-taken"
    title = "Email already registered"
    detail = "An account with this email already exists."


class UserNotFound(NotFound):
    type = "urn:problem-type:user-not-found"
    title = "User not found"
    detail = "No user with this id."


class InvalidAccountToken(BadRequest):
    """One answer for a token that is unknown, used, replaced or expired: which one it was
    would only help someone guessing."""

    type = "urn:problem-type:invalid-token"
    title = "Invalid token"
    detail = "The link is invalid, already used or expired; ask for a new one."


class EmailAlreadyVerified(Conflict):
    type = "urn:problem-type:email-already-verified"
    title = "Email already verified"
    detail = "This account's email is already verified."
