"""fleetup's benchmarks: each ``<id>_<name>.py`` prints ``BENCH`` lines (see DESIGN.md)."""
