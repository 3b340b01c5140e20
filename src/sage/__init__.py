"""Sage.ai: an AI assistant for crypto-market investors, grounded in live market data."""

__version__ = "0.1.0"
