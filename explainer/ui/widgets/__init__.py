"""Reusable widgets shared by panels."""
