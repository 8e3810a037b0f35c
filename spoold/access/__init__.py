"""Access: who may read and upload (htpasswd accounts)."""
