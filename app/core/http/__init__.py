"""HTTP machinery around the routes: the middleware every request passes (request id and
access log, hardening, HEAD and gzip, metrics), problem+json rendering, ETags, the client's
address, the OpenAPI document and docs pages, and the server's own protocol settings.
Services never import this package: they raise the errors of app.core.errors."""
