"""Upstream chat providers: one module per wire format behind the interface in base.py."""
