"""Dev-only tooling: the local runner, Azurite control, the operator CLI and benchmarks. Never deployed."""
