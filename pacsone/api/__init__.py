"""The REST API under /api/: the archive's resources (archive.py) and the one router (urls.py)."""
