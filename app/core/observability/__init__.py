"""What operators see of a running service: structured logs carrying the request id
(`context`, `logging`), Prometheus metrics (`metrics`) and OpenTelemetry traces
(`telemetry`)."""
