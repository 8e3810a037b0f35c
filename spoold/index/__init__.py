"""The index: manifests, rendered pages, and the changes that publish them to storage."""
