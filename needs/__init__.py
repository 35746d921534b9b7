"""供需对接: buyers' procurement needs, exhibitors' responses, matching."""
