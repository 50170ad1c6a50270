"""pachctl: the command-line client and the Python client library."""
