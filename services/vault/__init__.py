"""The key vault: exchange credentials stored as ciphertext in KV ``vault``, handed to
registered services sealed to a one-time key, every access audited (DESIGN.md "Vault")."""
