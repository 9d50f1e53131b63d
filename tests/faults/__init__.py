"""The fault suite: the real `rintik-lite run` process under crashes, lost brokers, locked,
full or read-only databases, signals and a second process."""
