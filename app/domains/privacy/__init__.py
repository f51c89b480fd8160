"""Your account, your data: everything the service holds about the caller as one export, and
the erasure of the account."""
