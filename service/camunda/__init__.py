"""Camunda's rules, pure: value types and their conversions, Java type names, exact JSON
text, MIME types, query vocabulary and messages. No I/O, no web framework, no SQL."""
