"""Plugin worker processes: how they start, are supervised and reaped (a kernel service)."""
