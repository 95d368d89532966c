"""Partitions: monthly partitions of the trail, their maintenance, and retention through
verified archives."""
