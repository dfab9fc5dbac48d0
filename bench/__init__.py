"""ddstream's benchmark suite against the official Datadog clients (see docs/benchmarks.md)."""
