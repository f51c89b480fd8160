"""Reference servers that bound what the service can reach on the same machine and core.

Each is the least code that does the same kind of work as a service path: answer from
memory, read one row by primary key, insert one row. They run under gunicorn with the
service's worker class, so the only difference measured is the application itself.
"""
