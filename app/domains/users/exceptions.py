from app.core.errors import BadRequest, Conflict, NotFound


class EmailTaken(Conflict):
    type = "urn:problem-type:email-taken"
    title = "Email already registered"
    detail = "An account with this email already exists."


class UserNotFound(NotFound):
    type = "urn:problem-type:user-not-found"
    title = "User not found"
    detail = "No user with this id."


class WrongCurrentPassword(BadRequest):
    type = "urn:problem-type:wrong-current-password"
    title = "Wrong current password"
    detail = "The current password is not correct."
