"""Loopback fake vendor servers used by the test-suite (never contact real vendors)."""
