"""Helpers shared by the stages."""
