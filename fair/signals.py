"""What the packages tell whoever listens about a visitor's doing (blinker signals).

The packages below `audience` cannot import it; they send these, and audience.recording
(connected by the application factory) writes them down as events. Each is sent by a page, an
API view or a Socket.IO handler, in the request that saw it, with keyword arguments only.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: A project page or its API detail was shown: ``project`` (exhibitors.models.Project).
project_viewed = _signals.signal("project-viewed")
#: The catalogue was searched: ``fair_id``, ``terms`` (the words), ``facets`` (a dict of the
#: filters given), ``results`` (how many projects matched), ``page`` (a page opened: a visit).
catalogue_searched = _signals.signal("catalogue-searched")
#: A live hall was joined: ``fair_id``, ``hall_id``, ``showcase_id`` (on air, or None).
hall_visited = _signals.signal("hall-visited")
#: A user signed in (a page or a token): ``user`` (fair.accounts.models.User).
signed_in = _signals.signal("signed-in")
