"""The usage ledger's pure domain: notifications in, resource intervals out. No I/O here."""
