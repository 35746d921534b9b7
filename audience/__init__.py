"""The fair's audience: what visitors do (events, rollups), favourites, shares, the portrait."""
