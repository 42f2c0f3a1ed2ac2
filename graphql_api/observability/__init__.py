"""What operators watch: Prometheus metrics, OpenTelemetry traces, one log line per request."""
