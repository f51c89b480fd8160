from app.core.errors import BusinessRuleViolation, Conflict, NotFound


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


class DeliveryNotFound(NotFound):
    type = "urn:problem-type:webhook-delivery-not-found"
    title = "Webhook delivery not found"
    detail = "This webhook has no delivery with this id."


class DeliveryInProgress(Conflict):
    type = "urn:problem-type:webhook-delivery-in-progress"
    title = "Webhook delivery in progress"
    detail = "An attempt of this delivery is under way; redeliver it once it has ended."
