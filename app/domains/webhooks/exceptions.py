from app.core.errors import BusinessRuleViolation, NotFound


class WebhookNotFound(NotFound):
    type = "urn:problem-type:webhook-not-found"
    title = "Webhook not found"
    detail = "No webhook with this id."


class WebhookTargetNotAllowed(BusinessRuleViolation):
    """Raised at registration, and again before every delivery: a name that resolved to a
    public address yesterday may resolve to an internal one today (DNS rebinding)."""

    type = "urn:problem-type:webhook-target-not-allowed"
    title = "Webhook target not allowed"
    # One answer for every refused target, so it tells nothing about the network behind
    # the service: not what a name resolves to, nor whether it resolves at all.
    detail = (
        "The URL's host must resolve only to public addresses: names that do not resolve, "
        "and loopback, private, link-local and reserved addresses, are refused."
    )
