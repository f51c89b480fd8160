from app.core.errors import Forbidden, NotFound


class PostNotFound(NotFound):
    type = "urn:problem-type:post-not-found"
    title = "Post not found"
    detail = "No post with this id."


class NotPostAuthor(Forbidden):
    type = "urn:problem-type:not-post-author"
    title = "Not the post's author"
    detail = (
        "Only the post's author may change it; the author, or an administrator with the "
        "posts:admin scope, may delete it."
    )
