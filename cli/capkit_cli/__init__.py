"""The capkit command line: a thin click layer over capkit's public API."""
