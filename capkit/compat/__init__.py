"""Bridges to other macaroon implementations (kept out of the verification hot path)."""
