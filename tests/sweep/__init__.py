"""The platform (mate.sweep): search-space files, their trials, the resume check and the dry-run estimate."""
