"""The network proxy through which a sandboxed plugin reaches exactly the hosts it was granted."""
