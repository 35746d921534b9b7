"""Names of the /live namespace and its rooms: the only place they are spelled."""

from __future__ import annotations

from collections.abc import Iterable

#: The Socket.IO namespace of everything live: halls, chat, deals, totals, the dashboard.
NAMESPACE = "/live"

# Every viewer of a hall is in that hall's room and in its fair's room; an organiser's dashboard
# is in the fair's dashboard room. Fair-wide news (deals, totals) goes to the fair room and the
# dashboard room together, so no client hears it twice.


def hall_room(hall_id: int) -> str:
    """Viewers of one hall: its chat, what is on air, its viewer figures."""
    return f"hall:{hall_id}"


def fair_room(fair_id: int) -> str:
    """Every hall viewer of a fair: the fair's deals and totals."""
    return f"fair:{fair_id}"


def dashboard_room(fair_id: int) -> str:
    """The organisers' dashboards of a fair: deals, totals and every hall's viewer figures."""
    return f"dashboard:{fair_id}"


def user_room(user_id: int) -> str:
    """Every socket of one signed-in user, and only its: its unread notifications."""
    return f"user:{user_id}"


def fairs_of(room_names: Iterable[str]) -> set[int]:
    """The fairs whose fair or dashboard room is among these rooms."""
    prefixes = (fair_room(0)[:-1], dashboard_room(0)[:-1])
    return {int(name.partition(":")[2]) for name in room_names
            if name.startswith(prefixes) and name.partition(":")[2].isdigit()}


def users_of(room_names: Iterable[str]) -> set[int]:
    """The users whose room is among these rooms."""
    prefix = user_room(0)[:-1]
    return {int(name.partition(":")[2]) for name in room_names
            if name.startswith(prefix) and name.partition(":")[2].isdigit()}
