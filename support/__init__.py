"""What the tests, the scripts and the benchmark share, so that none imports another: server
processes on free ports (`processes`, `servers`), nginx and the local compose topology
(`nginx`, `stack`), the deployment files read as data (`deployment`), and the soak's ledger of
writes to check afterwards (`ledger`)."""
