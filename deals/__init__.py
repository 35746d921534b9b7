"""Intents to sign, idempotency, the running totals and exports."""
