"""Kernels of ``fastengage.privacy``: keyed hashing of id buffers (HMAC-SHA256 on the CPU's SHA
extensions in ``hmac_native``, else through OpenSSL's libcrypto called by address in
``keyed_hash``; BLAKE2b, SipHash), the consent point-in-time join and contribution-bounded
aggregates."""
