"""pachd: the Pachyderm v1.2 server."""

VERSION = (1, 2, 3)
VERSION_ADDITIONAL = "py"
