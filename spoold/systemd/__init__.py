"""systemd integration: the sd_notify protocol and the Twisted service that speaks it."""
