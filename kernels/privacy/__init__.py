"""Kernels of ``fastengage.privacy``: keyed hashing of id buffers (through OpenSSL's libcrypto,
called by address), the consent point-in-time join and contribution-bounded aggregates."""
