"""Every user's inbox: notifications, the unread count live over /live, e-mail when configured."""
