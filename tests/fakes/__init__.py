"""Loopback fake servers that speak external APIs contracts, failures included."""
