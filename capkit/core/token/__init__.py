"""Wire format and HMAC chain: encode/decode, mint, attenuate, parse."""

from .token import TEXT_PREFIX, Token, decode_text, mint

__all__ = ["TEXT_PREFIX", "Token", "decode_text", "mint"]
