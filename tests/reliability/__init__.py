"""Reliability tests: crashes, network faults, local faults, names, scale, secrets."""
