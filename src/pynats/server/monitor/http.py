"""Placeholder replaced by the monitoring module."""
