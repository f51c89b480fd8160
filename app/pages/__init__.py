"""The HTML pages behind the links the service emails: resetting a password and verifying
an email address, served by the service itself so a link works with no frontend of its own.

Server-rendered, usable without JavaScript, nothing loaded from anywhere: each page is one
document with its own inline style, under a Content-Security-Policy that allows exactly that
style and forms posting back here. The emailed token is the forms' only credential, so
there is no cookie to steal and no Origin to check (under `no-referrer` a browser sends
`Origin: null`). A GET never spends a token: mail scanners follow links.
"""
