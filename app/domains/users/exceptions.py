from app.core.errors import Conflict, NotFound


class EmailTaken(Conflict):
    type = "urn:problem-type:email-taken"
    title = "Email already registered"
    detail = "An account with this email already exists."


class UserNotFound(NotFound):
    type = "urn:problem-type:user-not-found"
    title = "User not found"
    detail = "No user with this id."
