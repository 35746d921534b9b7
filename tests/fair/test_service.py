"""Fair use cases."""

from __future__ import annotations

import datetime as dt

from fair import service
from fair.accounts.models import User
from fair.database import as_utc
from fair.extensions import db

BEIJING = dt.timezone(dt.timedelta(hours=8))


def test_fair_times_given_in_beijing_time_are_kept_as_the_same_moment(organiser: User) -> None:
    opens = dt.datetime(2026, 12, 1, 9, tzinfo=BEIJING)
    fair = service.create_fair(organiser=organiser, name="成都文旅采购大会", starts_at=opens,
                               ends_at=opens + dt.timedelta(days=3))
    db.session.expire_all()

    assert as_utc(service.access_fair(fair.id).starts_at) == opens
    service.update_fair(fair, organiser=organiser,
                        changes={"ends_at": dt.datetime(2026, 12, 4, 18, tzinfo=BEIJING)})
    db.session.expire_all()
    assert as_utc(service.access_fair(fair.id).ends_at) == dt.datetime(2026, 12, 4, 10,
                                                                        tzinfo=dt.UTC)
