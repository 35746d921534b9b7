"""Live halls: showcases, on-air control, chat, viewer counts and broadcasting."""
