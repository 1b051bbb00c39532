"""Reaching a live process: discovery, the client of the agent's socket, and injection."""
