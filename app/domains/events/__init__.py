"""Live events: the order events a caller may see, streamed from the job log as they commit,
replayed from a stream position after a reconnection."""
