from app.core.errors import TooManyRequests


class TooManyStreams(TooManyRequests):
    type = "urn:problem-type:too-many-streams"
    title = "Too many event streams"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"You already have {limit} event streams open; close one first.",
            headers={"Retry-After": "5"},
        )
