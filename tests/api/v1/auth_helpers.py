"""Paths shared by the authentication tests."""

ME = "/api/v1/users/me"
REFRESH = "/api/v1/auth/refresh"
