"""mes: the reference manufacturing execution system built on isles (seeds 000 and 001)."""
