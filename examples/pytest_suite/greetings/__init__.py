"""A tiny package for the example suite: a greeter that its tests reload, and a registry of
handlers that outlives every reload."""
