"""PFS mounted as a filesystem: `pachctl mount`, and pods' /pfs in FUSE mode."""
