"""One module per venue the simulator speaks on its core: the venue's routes, its
authentication check and its reply formats (see services/simulator/dialect.py)."""
