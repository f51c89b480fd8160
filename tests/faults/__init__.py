"""Faults injected into the running service: outages, hangs, exhaustion, killed processes."""
