"""Exhibitors, their fair applications, projects, media and the catalogue."""
