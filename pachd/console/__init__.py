"""The web console, served by pachd on its own port (see server.py)."""
