"""The worker daemon: the Twisted service, the per-item decision and the watcher."""
