"""The IPCs as the server knows them: enrollment, actions, step reports, backups."""
