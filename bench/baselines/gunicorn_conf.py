"""Gunicorn settings for the baselines: none.

Passed explicitly so gunicorn does not pick up the service's ./gunicorn.conf.py (and its
Prometheus directory) from the working directory; everything else is on the command line,
the same as the service's.
"""
