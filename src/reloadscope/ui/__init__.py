"""The terminal UI (Textual): one app over one Source interface (live, this process, file)."""
