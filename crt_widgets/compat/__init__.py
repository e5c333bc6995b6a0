"""Ports of other tools' interfaces, for users who bring scripts from R."""
