"""Users, organisations, tokens and roles."""
