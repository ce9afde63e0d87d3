"""IPC program releases: packages, the blob store, and the TUF repository that signs them."""
