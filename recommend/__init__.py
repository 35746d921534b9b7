"""Recommendations (猜你喜欢): item neighbours, provincial popularity and content, explained."""
