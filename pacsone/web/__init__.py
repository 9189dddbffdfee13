"""The web pages of the archive core: one module per page family, one URL map (urls.py)."""
